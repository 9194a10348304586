// Command deploygraph serves the deployments domain of a GitLab-style
// platform as a GraphQL API.
package main

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql/playground"

	"github.com/deploygraph/deploygraph/graph"
	"github.com/deploygraph/deploygraph/graph/observe"
	"github.com/deploygraph/deploygraph/store"
)

//go:embed schema.graphqls
var schemaSDL []byte

// config is everything the flags (and their environment variables) set.
type config struct {
	addr              string
	db                string
	adminToken        string
	demo              bool
	importFile        string
	introspection     bool
	corsOrigins       []string
	maxDepth          int
	maxComplexity     int
	maxRunningQueries int
	graphiqlDir       string

	// logger takes the request log lines; nil is slog's default logger.
	logger *slog.Logger
}

// parseFlags reads the flags; an environment variable gives a flag its
// default, and the command line wins over both.
func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("deploygraph", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", envOr("DEPLOYGRAPH_ADDR", "127.0.0.1:8080"), "listen address (DEPLOYGRAPH_ADDR)")
	fs.StringVar(&c.db, "db", envOr("DEPLOYGRAPH_DB", "deploygraph.db"), "bbolt file, created if missing (DEPLOYGRAPH_DB)")
	fs.StringVar(&c.adminToken, "admin-token", os.Getenv("DEPLOYGRAPH_ADMIN_TOKEN"),
		"make sure this token authenticates as the admin user root (DEPLOYGRAPH_ADMIN_TOKEN)")
	fs.BoolVar(&c.demo, "demo", false, "when the store holds no projects, import the built-in demo data")
	fs.StringVar(&c.importFile, "import", "", "import this JSON file before serving (idempotent)")
	fs.BoolVar(&c.introspection, "introspection", true, "allow schema introspection")
	corsOrigins := fs.String("cors-origins", "", "comma-separated allowed browser origins, such as https://app.example.com")
	fs.IntVar(&c.maxDepth, "max-depth", graph.DefaultMaxDepth, "deepest nesting of fields in an operation")
	fs.IntVar(&c.maxComplexity, "max-complexity", graph.DefaultMaxComplexity,
		"highest cost of an operation; a connection multiplies its children by first/last, or by 20 without them")
	fs.IntVar(&c.maxRunningQueries, "max-running-queries", graph.DefaultMaxRunningQueries(),
		"how many queries run at once (twice the processors by default); the others wait their turn")
	fs.StringVar(&c.graphiqlDir, "graphiql-assets", "",
		"serve GraphiQL's scripts and stylesheet from this folder instead of a CDN (see README)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.maxDepth < 1 {
		return c, fmt.Errorf("-max-depth must be at least 1, not %d", c.maxDepth)
	}
	if c.maxComplexity < 1 {
		return c, fmt.Errorf("-max-complexity must be at least 1, not %d", c.maxComplexity)
	}
	if c.maxRunningQueries < 1 {
		return c, fmt.Errorf("-max-running-queries must be at least 1, not %d", c.maxRunningQueries)
	}
	origins, err := parseOrigins(*corsOrigins)
	if err != nil {
		return c, fmt.Errorf("-cors-origins: %w", err)
	}
	c.corsOrigins = origins
	return c, nil
}

// parseOrigins reads a comma-separated list of browser origins, each a
// scheme and a host with an optional port, as browsers send them.
func parseOrigins(list string) ([]string, error) {
	var origins []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%q is not an origin such as https://app.example.com", o)
		}
		origins = append(origins, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return origins, nil
}

func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
}

// app is a running deploygraph: its store, its metrics and its HTTP routes.
type app struct {
	store   *store.Store
	metrics *observe.Metrics
	api     *graph.Handler
	handler http.Handler
}

// newApp opens the store, loads data and bootstraps the admin token.
func newApp(ctx context.Context, c config, opts store.Options) (*app, error) {
	graphiql, err := graphiqlPage(c.graphiqlDir)
	if err != nil {
		return nil, err
	}
	m := observe.NewMetrics()
	if also := opts.OnTx; also != nil {
		opts.OnTx = func(kind string, d time.Duration, err error) {
			m.ObserveTx(kind, d, err)
			also(kind, d, err)
		}
	} else {
		opts.OnTx = m.ObserveTx
	}
	s, err := store.Open(c.db, opts)
	if err != nil {
		return nil, err
	}
	if err := prepareStore(ctx, s, c); err != nil {
		s.Close()
		return nil, err
	}
	m.WatchCommits(s.CommitStats)
	a := &app{store: s, metrics: m}
	a.handler, a.api = routes(s, c, m, graphiql)
	return a, nil
}

// prepareStore runs the imports, then the admin-token bootstrap (so that
// an imported root is found rather than created anew).
func prepareStore(ctx context.Context, s *store.Store, c config) error {
	if c.importFile != "" {
		stats, err := s.ImportFile(ctx, c.importFile)
		if err != nil {
			return fmt.Errorf("import %s: %w", c.importFile, err)
		}
		slog.Info("imported", "file", c.importFile, "records", stats.String())
	}
	if c.demo {
		stats, imported, err := s.ImportDemo(ctx)
		if err != nil {
			return fmt.Errorf("import demo data: %w", err)
		}
		if imported {
			slog.Info("imported demo data", "records", stats.String())
		}
	}
	if c.adminToken != "" {
		return s.EnsureAdminToken(ctx, c.adminToken)
	}
	secret, err := s.BootstrapToken(ctx)
	if err != nil {
		return err
	}
	if secret != "" {
		// Printed once: the store keeps only its hash.
		slog.Warn("created an admin token for root; it will not be shown again", "token", secret)
	}
	return nil
}

// routes wires every HTTP route; each request is logged and, when it is a
// GraphQL request, counted.
func routes(s *store.Store, c config, m *observe.Metrics, graphiql http.Handler) (http.Handler, *graph.Handler) {
	mux := http.NewServeMux()
	api := graph.NewHandler(s, graph.Options{
		Introspection:     c.introspection,
		MaxDepth:          c.maxDepth,
		MaxComplexity:     c.maxComplexity,
		MaxRunningQueries: c.maxRunningQueries,
		CORSOrigins:       c.corsOrigins,
		Metrics:           m,
	})
	// Requests have 30 s; a WebSocket lives as long as its subscriptions.
	mux.Handle("/graphql", api)
	mux.Handle("GET /admin/backup", graph.NewBackupHandler(s))
	mux.Handle("GET /{$}", graphiql)
	if c.graphiqlDir != "" {
		mux.Handle("GET "+graphiqlAssetsPath, http.StripPrefix(graphiqlAssetsPath, graphiqlAssets(c.graphiqlDir)))
	}
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /schema.graphql", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(schemaSDL)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ping(r.Context()); err != nil {
			http.Error(w, "store not answering", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	logger := c.logger
	if logger == nil {
		logger = slog.Default()
	}
	return observe.Middleware(logger, m, mux), api
}

// graphiqlAssetsPath is where the -graphiql-assets folder is served.
const graphiqlAssetsPath = "/graphiql-assets/"

// graphiqlFiles are the files GraphiQL's page loads, as the npm packages
// graphiql 4.1.2, react 18.2.0 and react-dom 18.2.0 ship them.
var graphiqlFiles = []string{"graphiql.min.js", "graphiql.min.css", "react.production.min.js", "react-dom.production.min.js"}

// graphiqlPage is GraphiQL, loading its files from the CDN or, given a
// folder, from this server, with the files' hashes as integrity checks.
func graphiqlPage(dir string) (http.Handler, error) {
	if dir == "" {
		return playground.Handler("deploygraph", "/graphql"), nil
	}
	sri := make(map[string]string, len(graphiqlFiles))
	for _, name := range graphiqlFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("-graphiql-assets: %w", err)
		}
		sum := sha256.Sum256(data)
		sri[name] = "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
	}
	asset := func(name string) string { return graphiqlAssetsPath + name }
	return playground.Handler("deploygraph", "/graphql",
		playground.WithGraphiqlVersion(asset("graphiql.min.js"), asset("graphiql.min.css"), sri["graphiql.min.js"], sri["graphiql.min.css"]),
		playground.WithGraphiqlReactVersion(asset("react.production.min.js"), asset("react-dom.production.min.js"),
			sri["react.production.min.js"], sri["react-dom.production.min.js"]),
	), nil
}

// graphiqlAssets serves the GraphiQL files of dir, and nothing else of it.
func graphiqlAssets(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(graphiqlFiles, r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, r.URL.Path))
	})
}

func main() {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	tuneGC()
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := run(c); err != nil {
		slog.Error("deploygraph stopped", "error", err.Error())
		os.Exit(1)
	}
}

// tuneGC sets the garbage collector's defaults, unless GOGC or GOMEMLIMIT
// are set: a request allocates much short-lived memory while the live heap
// stays small, so collecting at four times the live heap rather than twice
// cuts the collector's share of the CPU by about half; the soft limit keeps
// the heap bounded should the live heap grow.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(384 << 20)
	}
}

// run serves until SIGINT or SIGTERM, then lets in-flight requests finish
// and closes the store.
func run(c config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := newApp(ctx, c, store.Options{})
	if err != nil {
		return err
	}
	defer a.store.Close()
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	go sweep(ctx, a.store, sweepEvery)
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	slog.Info("serving", "addr", "http://"+ln.Addr().String()+"/", "db", c.db, "pid", strconv.Itoa(os.Getpid()))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	// Subscriptions first: their WebSockets are not requests that
	// Shutdown waits for, and their clients should hear why they end.
	if err := a.api.Drain(shutdownCtx); err != nil {
		slog.Warn("subscriptions did not all end in time", "error", err.Error())
	}
	return srv.Shutdown(shutdownCtx)
}

// sweepEvery is how often the background sweeps run: environments whose
// autoStopAt or autoDeleteAt has passed are stopped or deleted within this.
const sweepEvery = time.Minute

// sweep runs the environment sweeps until ctx ends.
func sweep(ctx context.Context, s *store.Store, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		stopped, deleted, err := s.SweepEnvironments(ctx)
		switch {
		case errors.Is(err, context.Canceled):
			return
		case err != nil:
			slog.Error("environment sweep failed", "error", err.Error())
		case stopped+deleted > 0:
			slog.Info("environment sweep", "stopped", stopped, "deleted", deleted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
