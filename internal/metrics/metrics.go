// Package metrics exports dlogd's measurements as Prometheus metrics
// (github.com/prometheus/client_golang), served by `dlogd serve --metrics
// ADDR`.
//
// Two kinds of metrics: histograms fed on the request path through the
// daemon.Observer interface (request latency by type, flush latency, bytes
// per flush), with one pre-resolved observer per request type so that
// observing allocates nothing; and everything else read at scrape time
// from the daemon, its logs and the transport by a Collector (request and
// error counts, per-log gauges, transport drops by reason), so that the
// request path pays nothing for them.
//
// Per-log series are labelled by the log's uuid, its mirror's
// device-mapper name and its type, never by the luid: the kernel gives a
// log a new luid at every table reload (a new CTR before the old DTR), and
// a luid label would start new series each time. While a reload has two
// instances of one uuid, the series show the running one (else the
// youngest); the per-log counters restart from that instance's figures, a
// counter reset Prometheus handles. dlogd_build_info carries the version.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dlog-dev/dlog/daemon"
	"github.com/dlog-dev/dlog/transport"
	"github.com/dlog-dev/dlog/ulog"
)

// Metrics is dlogd's metric registry.
type Metrics struct {
	reg       *prometheus.Registry
	latency   *prometheus.HistogramVec
	byType    [ulog.MaxRequestType + 1]prometheus.Observer
	flushLat  prometheus.Histogram
	flushSize prometheus.Histogram
	flushErrs prometheus.Counter
}

// New makes the registry with the Go and process collectors and the
// request-path histograms. Attach adds the daemon's own metrics.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dlogd_request_duration_seconds",
		Help:    "Time from receiving a request to sending its reply, by request type.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 2.5, 14), // 1 µs .. ~150 ms
	}, []string{"type"})
	for t := ulog.TypeCtr; t <= ulog.MaxRequestType; t++ {
		m.byType[t] = m.latency.WithLabelValues(t.String())
	}
	m.flushLat = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "dlogd_flush_duration_seconds",
		Help:    "Time a log flush (FLUSH or POSTSUSPEND) spent in the engine: writes and device cache flush.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 2, 16), // 10 µs .. ~330 ms
	})
	m.flushSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "dlogd_flush_bytes",
		Help:    "Bytes written to the log device by one flush (0: nothing changed).",
		Buckets: []float64{0, 4096, 8192, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20},
	})
	m.flushErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dlogd_flush_errors_total",
		Help: "Flushes that failed (the log device shows D or F).",
	})
	m.reg.MustRegister(m.latency, m.flushLat, m.flushSize, m.flushErrs)
	return m
}

// Observer returns the daemon.Observer that feeds the histograms.
func (m *Metrics) Observer() daemon.Observer { return observer{m} }

type observer struct{ m *Metrics }

func (o observer) Request(t ulog.RequestType, d time.Duration, _ int32) {
	if t.Valid() {
		o.m.byType[t].Observe(d.Seconds())
	}
}

func (o observer) Flush(d time.Duration, bytes uint64, err error) {
	o.m.flushLat.Observe(d.Seconds())
	o.m.flushSize.Observe(float64(bytes))
	if err != nil {
		o.m.flushErrs.Inc()
	}
}

// BuildInfo registers dlogd_build_info, 1 with the build as labels.
func (m *Metrics) BuildInfo(version, revision, goVersion string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "dlogd_build_info",
		Help:        "dlogd's build: version, VCS revision and Go release as labels; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	})
	g.Set(1)
	m.reg.MustRegister(g)
}

// NameFunc returns the device-mapper name of the mirror whose userspace
// log has the given uuid, or "" when it cannot tell (no such table yet,
// no access to device-mapper).
type NameFunc func(uuid string) string

// Attach registers the scrape-time metrics of d and t. name, which may be
// nil, gives the "name" label of each log; a name found is kept, one not
// found is asked again at the next scrape.
func (m *Metrics) Attach(d *daemon.Daemon, t transport.Transport, name NameFunc) {
	m.reg.MustRegister(&collector{d: d, t: t, name: name, names: map[string]string{}})
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the underlying registry (for tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var (
	descRequests  = prometheus.NewDesc("dlogd_requests_total", "Requests received, by type.", []string{"type"}, nil)
	descMalformed = prometheus.NewDesc("dlogd_malformed_requests_total", "Datagrams the codec rejected (answered with an error or dropped).", nil, nil)
	descUnknown   = prometheus.NewDesc("dlogd_unknown_log_requests_total", "Requests for a (uuid, luid) dlogd does not serve (answered -ESRCH).", nil, nil)
	descErrors    = prometheus.NewDesc("dlogd_error_replies_total", "Replies carrying a non-zero error.", nil, nil)
	descBusy      = prometheus.NewDesc("dlogd_busy_replies_total", "Requests refused with EAGAIN because a log's queue was full.", nil, nil)
	descLogs      = prometheus.NewDesc("dlogd_logs", "Logs served.", nil, nil)

	logLabels      = []string{"uuid", "name", "type"}
	descRegions    = prometheus.NewDesc("dlogd_log_regions", "Regions of the log.", logLabels, nil)
	descDirty      = prometheus.NewDesc("dlogd_log_dirty_regions", "Regions whose clean bit is clear.", logLabels, nil)
	descInSync     = prometheus.NewDesc("dlogd_log_in_sync_regions", "Regions in sync.", logLabels, nil)
	descRecovering = prometheus.NewDesc("dlogd_log_recovering_regions", "Regions handed out for resync and not yet reported.", logLabels, nil)
	descFailed     = prometheus.NewDesc("dlogd_log_device_failed", "1 when the log device failed (status D or F).", logLabels, nil)
	descLogBytes   = prometheus.NewDesc("dlogd_log_written_bytes_total", "Bytes written to the log device, resume included.", logLabels, nil)
	descLogFlushes = prometheus.NewDesc("dlogd_log_flushes_total", "Flushes that wrote or synced something.", logLabels, nil)

	descRecv    = prometheus.NewDesc("dlogd_transport_received_total", "Datagrams read from the transport.", nil, nil)
	descDropped = prometheus.NewDesc("dlogd_transport_dropped_total", "Datagrams dropped by the transport, by reason.", []string{"reason"}, nil)
	descTErrors = prometheus.NewDesc("dlogd_transport_errors_total", "Transport errors, by kind.", []string{"kind"}, nil)
)

// collector reads the daemon's counters and logs at scrape time.
type collector struct {
	d    *daemon.Daemon
	t    transport.Transport
	name NameFunc

	mu    sync.Mutex
	names map[string]string // uuid -> device-mapper name found
}

// nameOf is the device-mapper name of uuid's mirror, looked up once.
func (c *collector) nameOf(uuid string) string {
	if c.name == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.names[uuid]; ok {
		return n
	}
	n := c.name(uuid)
	if n != "" {
		c.names[uuid] = n
	}
	return n
}

// onePerUUID keeps one status per uuid: the running instance, else the
// youngest (st is sorted by uuid, then luid).
func onePerUUID(st []daemon.LogStatus) []daemon.LogStatus {
	var out []daemon.LogStatus
	for _, s := range st {
		if n := len(out); n > 0 && out[n-1].UUID == s.UUID {
			prev := &out[n-1]
			prevRunning, running := prev.State.Phase == "running", s.State.Phase == "running"
			if running && !prevRunning || running == prevRunning && s.Age < prev.Age {
				*prev = s
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descMalformed, descUnknown, descErrors, descBusy, descLogs,
		descRegions, descDirty, descInSync, descRecovering, descFailed, descLogBytes, descLogFlushes,
		descRecv, descDropped, descTErrors} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	cn := c.d.Counters()
	for t := ulog.TypeCtr; t <= ulog.MaxRequestType; t++ {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(cn.Requests[t]), t.String())
	}
	ch <- prometheus.MustNewConstMetric(descMalformed, prometheus.CounterValue, float64(cn.Malformed))
	ch <- prometheus.MustNewConstMetric(descUnknown, prometheus.CounterValue, float64(cn.UnknownLog))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(cn.Errors))
	ch <- prometheus.MustNewConstMetric(descBusy, prometheus.CounterValue, float64(cn.Busy))
	st := c.d.Status()
	ch <- prometheus.MustNewConstMetric(descLogs, prometheus.GaugeValue, float64(len(st)))
	live := map[string]bool{}
	for _, s := range onePerUUID(st) {
		live[s.UUID] = true
		l := []string{s.UUID, c.nameOf(s.UUID), s.State.Type}
		failed := 0.0
		if s.State.IOFailed || s.State.FlushFailed {
			failed = 1
		}
		ch <- prometheus.MustNewConstMetric(descRegions, prometheus.GaugeValue, float64(s.State.Regions), l...)
		ch <- prometheus.MustNewConstMetric(descDirty, prometheus.GaugeValue, float64(s.State.Dirty), l...)
		ch <- prometheus.MustNewConstMetric(descInSync, prometheus.GaugeValue, float64(s.State.InSync), l...)
		ch <- prometheus.MustNewConstMetric(descRecovering, prometheus.GaugeValue, float64(s.State.Recovering), l...)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.GaugeValue, failed, l...)
		ch <- prometheus.MustNewConstMetric(descLogBytes, prometheus.CounterValue, float64(s.State.Stats.BytesWritten), l...)
		ch <- prometheus.MustNewConstMetric(descLogFlushes, prometheus.CounterValue, float64(s.State.Stats.Flushes), l...)
	}
	// Forget the names of logs gone: a uuid used again may be another
	// mirror's.
	c.mu.Lock()
	for uuid := range c.names {
		if !live[uuid] {
			delete(c.names, uuid)
		}
	}
	c.mu.Unlock()
	if c.t == nil {
		return
	}
	ts := c.t.Stats()
	ch <- prometheus.MustNewConstMetric(descRecv, prometheus.CounterValue, float64(ts.Received))
	for reason, v := range map[string]uint64{
		"truncated": ts.DroppedTruncated, "foreign_sender": ts.DroppedForeign, "short": ts.DroppedShort,
		"bad_length": ts.DroppedBadLength, "not_done": ts.DroppedNotDone, "connector_id": ts.DroppedConnectorID,
	} {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(v), reason)
	}
	for kind, v := range map[string]uint64{
		"overrun": ts.Overruns, "receive": ts.RecvErrors, "send": ts.SendErrors, "refused_peer": ts.Refused,
	} {
		ch <- prometheus.MustNewConstMetric(descTErrors, prometheus.CounterValue, float64(v), kind)
	}
}
