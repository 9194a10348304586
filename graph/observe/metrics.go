// Package observe is what an operator sees of a running server: Prometheus
// metrics on a private registry, and one structured log line per request
// with its request id.
package observe

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deploygraph/deploygraph/store"
)

// Metrics are the server's Prometheus metrics. A nil *Metrics records
// nothing, so that tests and tools may leave it out.
type Metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	errors          *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	txDuration      *prometheus.HistogramVec
	txErrors        *prometheus.CounterVec
	batchSize       *prometheus.HistogramVec
	batchWaits      *prometheus.CounterVec
	queriesWaiting  prometheus.Gauge
	queryWait       prometheus.Histogram

	// ActiveSubscriptions counts the subscriptions being served; the
	// subscription transport moves it (see SubscriptionStarted).
	ActiveSubscriptions prometheus.Gauge
}

// NewMetrics registers the metrics, with the Go runtime's and the
// process's, on a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploygraph_graphql_requests_total",
			Help: "GraphQL requests by operation type (query, mutation, subscription; none when the request never named a valid operation) and outcome (ok, error).",
		}, []string{"operation_type", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploygraph_graphql_errors_total",
			Help: "Errors in GraphQL responses by extensions.code.",
		}, []string{"code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deploygraph_graphql_request_duration_seconds",
			Help:    "Time to answer a GraphQL request, by operation type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"operation_type"}),
		txDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deploygraph_store_transaction_duration_seconds",
			Help:    "Store transactions by kind (read, write) and how long they took; _count counts them.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"kind"}),
		txErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploygraph_store_transaction_errors_total",
			Help: "Store transactions that returned an error (a domain error or a failure), by kind.",
		}, []string{"kind"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deploygraph_dataloader_batch_size",
			Help:    "Keys per dataloader batch, by loader.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}, []string{"loader"}),
		batchWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploygraph_dataloader_waits_total",
			Help: "Dataloader batches that waited for the other items of a list (the rest are sent at once), by loader.",
		}, []string{"loader"}),
		queriesWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deploygraph_graphql_queries_waiting",
			Help: "Queries waiting for their turn to run (-max-running-queries run at once).",
		}),
		queryWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "deploygraph_graphql_query_wait_seconds",
			Help:    "How long queries waited for their turn to run; queries that found one free at once are not counted.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5, 30},
		}),
		ActiveSubscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deploygraph_graphql_active_subscriptions",
			Help: "Subscriptions being served.",
		}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.errors, m.requestDuration, m.txDuration, m.txErrors, m.batchSize, m.batchWaits,
		m.queriesWaiting, m.queryWait, m.ActiveSubscriptions,
	)
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Registry is where the metrics are registered.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveTx records a store transaction; it fits store.Options.OnTx.
func (m *Metrics) ObserveTx(kind string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.txDuration.WithLabelValues(kind).Observe(d.Seconds())
	if err != nil {
		m.txErrors.WithLabelValues(kind).Inc()
	}
}

// ObserveBatch records one dataloader batch: its size, and whether it
// waited for the other items of a list.
func (m *Metrics) ObserveBatch(loader string, keys int, waited bool) {
	if m == nil {
		return
	}
	m.batchSize.WithLabelValues(loader).Observe(float64(keys))
	if waited {
		m.batchWaits.WithLabelValues(loader).Inc()
	}
}

// QueryWaitStarted counts a query as waiting for its turn until the
// returned function is called, which records how long it waited.
func (m *Metrics) QueryWaitStarted() (ended func()) {
	if m == nil {
		return func() {}
	}
	m.queriesWaiting.Inc()
	start := time.Now()
	return func() {
		m.queryWait.Observe(time.Since(start).Seconds())
		m.queriesWaiting.Dec()
	}
}

// SubscriptionStarted counts a subscription as active until the returned
// function is called (once, when the subscription ends).
func (m *Metrics) SubscriptionStarted() (ended func()) {
	if m == nil {
		return func() {}
	}
	m.ActiveSubscriptions.Inc()
	var once sync.Once
	return func() { once.Do(m.ActiveSubscriptions.Dec) }
}

// observeRequest records a GraphQL request once it has been answered.
func (m *Metrics) observeRequest(opType, outcome string, codes []string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(opType, outcome).Inc()
	m.requestDuration.WithLabelValues(opType).Observe(d.Seconds())
	for _, c := range codes {
		m.errors.WithLabelValues(c).Inc()
	}
}

// commitCollector reports the store's commit costs, read once per scrape so
// that the figures of one scrape agree with each other.
type commitCollector struct {
	stats                                   func() store.CommitStats
	commits, writes, pages, spill, syncTime *prometheus.Desc
}

// WatchCommits exports stats, the store's commit costs so far: with the
// write transaction durations, they show whether writes wait for the
// processor or for the disk.
func (m *Metrics) WatchCommits(stats func() store.CommitStats) {
	if m == nil {
		return
	}
	m.registry.MustRegister(&commitCollector{
		stats: stats,
		commits: prometheus.NewDesc("deploygraph_store_group_commits_total",
			"Committed transactions of group commit, which the concurrent writes of the hot paths share.", nil, nil),
		writes: prometheus.NewDesc("deploygraph_store_grouped_writes_total",
			"Writes committed by group commit; divided by deploygraph_store_group_commits_total, the writes one commit served.", nil, nil),
		pages: prometheus.NewDesc("deploygraph_store_page_writes_total",
			"Pages written to the store's file by write transactions, meta pages included.", nil, nil),
		spill: prometheus.NewDesc("deploygraph_store_commit_spill_seconds_total",
			"Time write transactions spent turning changed nodes into pages.", nil, nil),
		syncTime: prometheus.NewDesc("deploygraph_store_commit_sync_seconds_total",
			"Time write transactions spent writing their pages and syncing them to disk.", nil, nil),
	})
}

func (c *commitCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.commits, c.writes, c.pages, c.spill, c.syncTime} {
		ch <- d
	}
}

func (c *commitCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(s.GroupCommits))
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(s.GroupedWrites))
	ch <- prometheus.MustNewConstMetric(c.pages, prometheus.CounterValue, float64(s.PageWrites))
	ch <- prometheus.MustNewConstMetric(c.spill, prometheus.CounterValue, s.SpillTime.Seconds())
	ch <- prometheus.MustNewConstMetric(c.syncTime, prometheus.CounterValue, s.SyncTime.Seconds())
}
