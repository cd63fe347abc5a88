package vmharness

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// ErrEmptyResults means the results disk holds no tar archive: the guest
// never got as far as writing its results (it crashed before, hung, or the
// virtio disk did not show up).
var ErrEmptyResults = errors.New("results disk is empty: the guest wrote no results")

// maxResultFile bounds one file read back from the results disk.
const maxResultFile = 256 << 20

// ReadResults reads the tar archive the guest wrote at the start of the raw
// results disk image and returns its regular files by clean relative name
// ("report.json", "golden/x.img"). The zero-filled rest of the disk is the
// archive's end marker as far as archive/tar is concerned.
func ReadResults(img string) (map[string][]byte, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, fmt.Errorf("vmharness: results disk: %w", err)
	}
	defer f.Close()
	return readResults(f)
}

func readResults(r io.Reader) (map[string][]byte, error) {
	tr := tar.NewReader(r)
	files := make(map[string][]byte)
	entries := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if entries == 0 {
				return nil, fmt.Errorf("%w (%v)", ErrEmptyResults, err)
			}
			return files, fmt.Errorf("vmharness: results disk: archive broken after %d entries: %w", entries, err)
		}
		entries++
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return files, fmt.Errorf("vmharness: results disk: unsafe name %q", h.Name)
		}
		if h.Size > maxResultFile {
			return files, fmt.Errorf("vmharness: results disk: %s is %d bytes, over the %d limit", name, h.Size, maxResultFile)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return files, fmt.Errorf("vmharness: results disk: reading %s: %w", name, err)
		}
		files[name] = b
	}
	if entries == 0 {
		return nil, ErrEmptyResults
	}
	return files, nil
}
