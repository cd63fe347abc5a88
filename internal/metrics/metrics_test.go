package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/internal/metrics"
	"github.com/dlog-dev/dlog/internal/testutil/fakekernel"
	"github.com/dlog-dev/dlog/ulog"
)

// call sends a request for luid 1 and waits for its reply.
func call(t *testing.T, k *fakekernel.Local, typ ulog.RequestType, data []byte) {
	t.Helper()
	callLUID(t, k, 1, typ, data)
}

// serve starts a daemon observed by m and attached to it with name (nil:
// no device-mapper names), closed at cleanup, and returns the fake kernel
// that talks to it.
func serve(t *testing.T, m *metrics.Metrics, name metrics.NameFunc) *fakekernel.Local {
	t.Helper()
	d := daemon.New(daemon.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: m.Observer()})
	t.Cleanup(func() { d.Close(context.Background()) })
	m.Attach(d, nil, name)
	return fakekernel.NewLocal(d)
}

// callLUID sends a request for log ("metrics", luid) and waits for its
// reply.
func callLUID(t *testing.T, k *fakekernel.Local, luid uint64, typ ulog.RequestType, data []byte) {
	t.Helper()
	r, err := k.Request(typ, "metrics", luid, data)
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
	if rec.Code != 200 {
		t.Fatalf("scrape: HTTP %d: %s", rec.Code, rec.Body.String())
	}
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

// settled scrapes until every series in want has its value or 5 s have
// passed, then reports the series that differ: the daemon counts a request
// just after it sends the reply, so a scrape right after the reply may
// miss the last one.
func settled(t *testing.T, m *metrics.Metrics, want map[string]string) string {
	t.Helper()
	re := func(series string) *regexp.Regexp {
		return regexp.MustCompile("(?m)^" + regexp.QuoteMeta(series) + ` (\S+)$`)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		text := scrape(t, m)
		var bad []string
		for series, v := range want {
			got := re(series).FindStringSubmatch(text)
			if got == nil || got[1] != v {
				bad = append(bad, fmt.Sprintf("%s = %v, want %s", series, got, v))
			}
		}
		if len(bad) == 0 {
			return text
		}
		if time.Now().After(deadline) {
			for _, b := range bad {
				t.Error(b)
			}
			return text
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMetrics(t *testing.T) {
	m := metrics.New()
	k := serve(t, m, nil)
	call(t, k, ulog.TypeCtr, []byte("131072 clustered-core 1024 nosync"))
	call(t, k, ulog.TypeResume, nil)
	for range 5 {
		call(t, k, ulog.TypeInSync, ulog.AppendUint64(nil, 3))
	}
	call(t, k, ulog.TypeMarkRegion, ulog.AppendUint64(ulog.AppendUint64(nil, 3), 9))
	call(t, k, ulog.TypeFlush, nil)
	call(t, k, ulog.TypeInSync, ulog.AppendUint64(nil, 999)) // out of range: an error reply
	want := map[string]string{
		`dlogd_requests_total{type="IN_SYNC"}`:                                    "6",
		`dlogd_requests_total{type="CTR"}`:                                        "1",
		`dlogd_request_duration_seconds_count{type="IN_SYNC"}`:                    "6",
		`dlogd_request_duration_seconds_count{type="FLUSH"}`:                      "1",
		`dlogd_request_duration_seconds_count{type="CTR"}`:                        "1",
		`dlogd_flush_duration_seconds_count`:                                      "1",
		`dlogd_flush_bytes_count`:                                                 "1",
		`dlogd_error_replies_total`:                                               "1",
		`dlogd_logs`:                                                              "1",
		`dlogd_log_regions{name="",type="clustered-core",uuid="metrics"}`:         "128",
		`dlogd_log_dirty_regions{name="",type="clustered-core",uuid="metrics"}`:   "2",
		`dlogd_log_in_sync_regions{name="",type="clustered-core",uuid="metrics"}`: "128",
	}
	text := settled(t, m, want)
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

// logSeries are the per-log series of a scrape: name and labels, sorted.
func logSeries(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "dlogd_log_") {
			out = append(out, line[:strings.LastIndexByte(line, ' ')])
		}
	}
	slices.Sort(out)
	return out
}

// Ensure that a table reload, which gives the log a new luid (CTR of the
// new table, then PRESUSPEND, POSTSUSPEND and DTR of the old one, RESUME of
// the new), continues the same series: labelled by uuid and device-mapper
// name, never luid; the scrape between CTR and DTR, with two instances of
// the uuid, neither fails nor doubles them; the name is looked up once.
func TestMetricsAcrossReload(t *testing.T) {
	m := metrics.New()
	lookups := 0
	k := serve(t, m, func(uuid string) string {
		lookups++
		return "vg-lv_" + uuid
	})
	ctr := []byte("131072 clustered-core 1024 nosync")
	callLUID(t, k, 0xffff8881, ulog.TypeCtr, ctr)
	callLUID(t, k, 0xffff8881, ulog.TypeResume, nil)
	callLUID(t, k, 0xffff8881, ulog.TypeMarkRegion, ulog.AppendUint64(nil, 3))
	callLUID(t, k, 0xffff8881, ulog.TypeFlush, nil)
	before := scrape(t, m)
	want := logSeries(before)
	if len(want) != 7 {
		t.Fatalf("%d per-log series before the reload, want 7: %q", len(want), want)
	}
	if got := value(t, before, `dlogd_log_dirty_regions{name="vg-lv_metrics",type="clustered-core",uuid="metrics"}`); got != "1" {
		t.Errorf("dirty before the reload: %s", got)
	}

	callLUID(t, k, 0xffff8882, ulog.TypeCtr, ctr) // the new table's log
	during := scrape(t, m)
	callLUID(t, k, 0xffff8881, ulog.TypePresuspend, nil)
	callLUID(t, k, 0xffff8881, ulog.TypePostsuspend, nil)
	callLUID(t, k, 0xffff8881, ulog.TypeDtr, nil)
	callLUID(t, k, 0xffff8882, ulog.TypeResume, nil)
	after := scrape(t, m)
	for when, text := range map[string]string{"during": during, "after": after} {
		if got := logSeries(text); !slices.Equal(got, want) {
			t.Errorf("series %s the reload:\n%q\nwant the same as before:\n%q", when, got, want)
		}
		if strings.Contains(text, "luid=") {
			t.Errorf("a luid label %s the reload", when)
		}
	}
	// During the reload the series show the running instance.
	if got := value(t, during, `dlogd_log_dirty_regions{name="vg-lv_metrics",type="clustered-core",uuid="metrics"}`); got != "1" {
		t.Errorf("dirty during the reload: %s, want the running log's 1", got)
	}
	if got := value(t, during, "dlogd_logs"); got != "2" {
		t.Errorf("dlogd_logs during the reload: %s", got)
	}
	if lookups != 1 {
		t.Errorf("%d name lookups for one uuid over three scrapes, want 1", lookups)
	}
}

// Ensure that dlogd's own metrics follow the Prometheus conventions
// (promlint: base units, _total on counters, help texts) and that
// dlogd_build_info carries the build.
func TestMetricNames(t *testing.T) {
	m := metrics.New()
	m.BuildInfo("v1.2.3", "0123abc", "go1.26.0")
	k := serve(t, m, nil)
	call(t, k, ulog.TypeCtr, []byte("131072 clustered-core 1024 nosync"))
	call(t, k, ulog.TypeFlush, nil)
	text := scrape(t, m)
	if got := value(t, text, `dlogd_build_info{goversion="go1.26.0",revision="0123abc",version="v1.2.3"}`); got != "1" {
		t.Errorf("dlogd_build_info = %s", got)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var own []*dto.MetricFamily
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "dlogd_") {
			own = append(own, mf)
		}
	}
	if len(own) < 15 {
		t.Fatalf("only %d dlogd_ families", len(own))
	}
	problems, err := promlint.NewWithMetricFamilies(own).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
