package metrics_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/internal/metrics"
	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// call sends a request and waits for its reply.
func call(t *testing.T, k *fakekernel.Local, typ ulog.RequestType, data []byte) {
	t.Helper()
	r, err := k.Request(typ, "metrics", 1, data)
	if err != nil {
		t.Fatal(err)
	}
	k.Send(r)
	if _, err := k.Finish(r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func value(t *testing.T, text, series string) string {
	t.Helper()
	re := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no series %s in:\n%s", series, text)
	}
	return m[1]
}

func TestMetrics(t *testing.T) {
	m := metrics.New()
	d := daemon.New(daemon.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: m.Observer()})
	defer d.Close(t.Context())
	m.Attach(d, nil)
	k := fakekernel.NewLocal(d)
	call(t, k, ulog.TypeCtr, []byte("131072 clustered-core 1024 nosync"))
	call(t, k, ulog.TypeResume, nil)
	for range 5 {
		call(t, k, ulog.TypeInSync, ulog.AppendUint64(nil, 3))
	}
	call(t, k, ulog.TypeMarkRegion, ulog.AppendUint64(ulog.AppendUint64(nil, 3), 9))
	call(t, k, ulog.TypeFlush, nil)
	call(t, k, ulog.TypeInSync, ulog.AppendUint64(nil, 999)) // out of range: an error reply
	text := scrape(t, m)
	for series, want := range map[string]string{
		`dlogd_requests_total{type="IN_SYNC"}`:                                       "6",
		`dlogd_requests_total{type="CTR"}`:                                           "1",
		`dlogd_request_duration_seconds_count{type="IN_SYNC"}`:                       "6",
		`dlogd_request_duration_seconds_count{type="FLUSH"}`:                         "1",
		`dlogd_request_duration_seconds_count{type="CTR"}`:                           "1",
		`dlogd_flush_duration_seconds_count`:                                         "1",
		`dlogd_flush_bytes_count`:                                                    "1",
		`dlogd_error_replies_total`:                                                  "1",
		`dlogd_logs`:                                                                 "1",
		`dlogd_log_regions{luid="0x1",type="clustered-core",uuid="metrics"}`:         "128",
		`dlogd_log_dirty_regions{luid="0x1",type="clustered-core",uuid="metrics"}`:   "2",
		`dlogd_log_in_sync_regions{luid="0x1",type="clustered-core",uuid="metrics"}`: "128",
	} {
		if got := value(t, text, series); got != want {
			t.Errorf("%s = %s, want %s", series, got, want)
		}
	}
	if !strings.Contains(text, "go_goroutines") || !strings.Contains(text, "process_resident_memory_bytes") {
		t.Error("Go and process collectors missing")
	}
}

// Observing a request allocates nothing: it sits on the request path.
func TestObserverZeroAlloc(t *testing.T) {
	o := metrics.New().Observer()
	if a := testing.AllocsPerRun(1000, func() { o.Request(ulog.TypeInSync, 3*time.Microsecond, 0) }); a != 0 {
		t.Fatalf("%v allocations per observation", a)
	}
}
