package vmharness

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// disk builds a results disk image: a tar archive followed by zeros, as the
// guest leaves it.
func disk(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte{'x'}, int(h.Size)))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return append(buf.Bytes(), make([]byte, 1<<16)...)
}

func TestReadResults(t *testing.T) {
	img := disk(t,
		tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "./report.json", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644},
		tar.Header{Name: "golden/a.img", Typeflag: tar.TypeReg, Size: 1536, Mode: 0o644},
		tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "report.json"},
	)
	p := filepath.Join(t.TempDir(), "results.img")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := ReadResults(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || string(files["report.json"]) != "xxx" || len(files["golden/a.img"]) != 1536 {
		t.Errorf("files %v", sortedKeys(files))
	}
}

func TestReadResultsEmpty(t *testing.T) {
	for name, img := range map[string][]byte{
		"zeros":   make([]byte, 1<<20),
		"nothing": nil,
		"garbage": bytes.Repeat([]byte("not a tar archive "), 100),
	} {
		if _, err := readResults(bytes.NewReader(img)); !errors.Is(err, ErrEmptyResults) {
			t.Errorf("%s: got %v, want ErrEmptyResults", name, err)
		}
	}
	if _, err := ReadResults(filepath.Join(t.TempDir(), "none.img")); err == nil {
		t.Error("a missing disk gave no error")
	}
}

func TestReadResultsUnsafe(t *testing.T) {
	for _, name := range []string{"../escape", "/abs/path"} {
		img := disk(t, tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
		if _, err := readResults(bytes.NewReader(img)); err == nil || !strings.Contains(err.Error(), "unsafe") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestReadResultsTruncated(t *testing.T) {
	img := disk(t,
		tar.Header{Name: "report.json", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644},
		tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 4096, Mode: 0o644},
	)
	files, err := readResults(bytes.NewReader(img[:512+512+512+100]))
	if err == nil || files["report.json"] == nil {
		t.Errorf("a cut archive should keep what came before and say so: %v %v", sortedKeys(files), err)
	}
}
