package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// logBuffer collects a server's log lines; requests log from many
// goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes the JSON log lines.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		out = append(out, line)
	}
	return out
}

// startObservedServer serves the demo data and keeps its log lines.
func startObservedServer(t *testing.T) (*testServer, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	c := config{db: filepath.Join(t.TempDir(), "deploygraph.db"), adminToken: rootToken, introspection: true, demo: true,
		logger: slog.New(slog.NewJSONHandler(logs, nil))}
	return serve(t, c), logs
}

// post sends a GraphQL request with extra headers and returns the response
// with its body.
func post(t *testing.T, s *testServer, body string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

// send sends req and returns the response with its whole body.
func send(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// metricAt reads one sample from the /metrics of the server at baseURL.
func metricAt(t testing.TB, baseURL, sample string) float64 {
	t.Helper()
	return metricValue(metricsText(t, baseURL), sample)
}

// metricsText is the /metrics exposition of the server at baseURL.
func metricsText(t testing.TB, baseURL string) string {
	t.Helper()
	_, text := send(t, must(http.NewRequest(http.MethodGet, baseURL+"/metrics", nil)))
	return text
}

// metricValue reads one sample of a Prometheus text exposition, such as
// `deploygraph_graphql_requests_total{operation_type="query",outcome="ok"}`;
// -1 when it is missing.
func metricValue(exposition, sample string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

// Ensure that requests, their errors and latency, store transactions and
// dataloader batches show in /metrics with their labels, and that every
// request logs one line with its request id and operation, and nothing
// secret.
func TestObservability(t *testing.T) {
	s, logs := startObservedServer(t)
	const (
		secretVariable = "variable-secret-6f1d"
		badToken       = "bad-token-secret-93ab"
	)

	// A named query with a variable, as root, with the client's request id.
	resp, body := post(t, s, `{"query":"query Dashboard($env: String) { project(id: \"root/project\") { deployments(environment: $env, first: 5) { nodes { iid environment { name } user { username } } } } }","operationName":"Dashboard","variables":{"env":"`+secretVariable+`"}}`,
		map[string]string{"Authorization": "Bearer " + rootToken, "X-Request-Id": "client-req-1"})
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `"errors"`) {
		t.Fatalf("query: %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "client-req-1" {
		t.Errorf("X-Request-Id: got %q, want the client's client-req-1", got)
	}
	resp, body = post(t, s, `{"query":"query Dashboard { project(id: \"root/project\") { deployments(first: 50) { nodes { iid environment { name } user { username } } } } }"}`,
		map[string]string{"Authorization": "Bearer " + rootToken})
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `"errors"`) {
		t.Fatalf("query: %d %s", resp.StatusCode, body)
	}
	// A query that does not validate, with a request id we do not take.
	resp, _ = post(t, s, `{"query":"{ nope }"}`, map[string]string{"X-Request-Id": `bad id "{}" ` + strings.Repeat("x", 80)})
	generatedID := resp.Header.Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(generatedID) {
		t.Errorf("X-Request-Id for an unusable incoming id: got %q, want a generated one", generatedID)
	}
	// A mutation that commits through group commit.
	resp, body = post(t, s, `{"query":"mutation { createDeployment(input: {projectId: \"root/project\", environment: \"observed\", sha: \"`+strings.Repeat("ab", 20)+`\", ref: \"main\", tag: false, status: RUNNING}) { deployment { iid } } }"}`,
		map[string]string{"Authorization": "Bearer " + rootToken})
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `"errors"`) {
		t.Fatalf("createDeployment: %d %s", resp.StatusCode, body)
	}
	// A mutation that fails, a token that does not authenticate, and a GET
	// whose URL holds a secret.
	post(t, s, `{"query":"mutation Remove { deleteDeployment(input: {deploymentId: \"999999\"}) { deletedDeploymentId } }"}`,
		map[string]string{"Authorization": "Bearer " + rootToken})
	resp, _ = post(t, s, `{"query":"{ currentUser { username } }"}`, map[string]string{"PRIVATE-TOKEN": badToken})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad token: got status %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, s.url+"/graphql?query="+url.QueryEscape(`query Count($env: String) { project(id: "root/project") { deployments(environment: $env) { count } } }`)+
		"&variables="+url.QueryEscape(`{"env":"`+secretVariable+`"}`), nil)
	req.Header.Set("Authorization", "Bearer "+rootToken)
	if resp, body := send(t, req); resp.StatusCode != http.StatusOK || strings.Contains(body, `"errors"`) {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}

	t.Run("Metrics", func(t *testing.T) {
		resp, text := send(t, must(http.NewRequest(http.MethodGet, s.url+"/metrics", nil)))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %d", resp.StatusCode)
		}
		for _, tc := range []struct {
			sample string
			min    float64
		}{
			{`deploygraph_graphql_requests_total{operation_type="query",outcome="ok"}`, 3},
			{`deploygraph_graphql_requests_total{operation_type="none",outcome="error"}`, 2}, // does not validate; bad token
			{`deploygraph_graphql_requests_total{operation_type="mutation",outcome="error"}`, 1},
			{`deploygraph_graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"}`, 1},
			{`deploygraph_graphql_errors_total{code="UNAUTHENTICATED"}`, 1},
			{`deploygraph_graphql_errors_total{code="NOT_FOUND"}`, 1},
			{`deploygraph_graphql_request_duration_seconds_count{operation_type="query"}`, 3},
			{`deploygraph_graphql_request_duration_seconds_bucket{operation_type="query",le="+Inf"}`, 3},
			{`deploygraph_store_transaction_duration_seconds_count{kind="read"}`, 3},
			{`deploygraph_store_transaction_duration_seconds_count{kind="write"}`, 1},
			{`deploygraph_store_group_commits_total`, 1},
			{`deploygraph_store_grouped_writes_total`, 1},
			{`deploygraph_store_page_writes_total`, 2}, // a page and the meta page, at least
			{`deploygraph_store_commit_sync_seconds_total`, 1e-9},
			{`deploygraph_store_commit_spill_seconds_total`, 0},
			{`deploygraph_dataloader_batch_size_count{loader="users"}`, 1},
			{`deploygraph_dataloader_batch_size_count{loader="environments"}`, 1},
			{`deploygraph_dataloader_batch_size_sum{loader="environments"}`, 2}, // the page's environments in one batch
			{`deploygraph_graphql_active_subscriptions`, 0},
			{`go_goroutines`, 1},
			{`process_cpu_seconds_total`, 0},
		} {
			if got := metricValue(text, tc.sample); got < tc.min {
				t.Errorf("%s: got %v, want at least %v", tc.sample, got, tc.min)
			}
		}
		if strings.Contains(text, `code=""`) || strings.Contains(text, secretVariable) {
			t.Errorf("metrics hold an empty code or a variable:\n%s", text)
		}
	})

	t.Run("Logs", func(t *testing.T) {
		lines := logs.lines(t)
		byID := map[string]map[string]any{}
		for _, l := range lines {
			if l["msg"] == "request" {
				byID[l["request_id"].(string)] = l
			}
		}
		l := byID["client-req-1"]
		if l == nil {
			t.Fatalf("no request line with the client's request id in:\n%s", logs)
		}
		for k, want := range map[string]any{"method": "POST", "path": "/graphql", "status": 200.0,
			"operation": "Dashboard", "operation_type": "query", "outcome": "ok", "level": "INFO"} {
			if l[k] != want {
				t.Errorf("%s: got %v, want %v (line %v)", k, l[k], want, l)
			}
		}
		if _, ok := l["duration_ms"].(float64); !ok {
			t.Errorf("no duration_ms in %v", l)
		}
		l = byID[generatedID]
		if l == nil || l["outcome"] != "error" || l["operation_type"] != "none" ||
			!strings.Contains(strings.Join(anyStrings(l["error_codes"]), ","), "GRAPHQL_VALIDATION_FAILED") {
			t.Errorf("line of the failed validation: got %v", l)
		}
		if n := len(byID); n < 7 {
			t.Errorf("got %d request lines, want one per request (7)", n)
		}
		all := logs.String()
		for _, secret := range []string{rootToken, badToken, secretVariable, "Bearer"} {
			if strings.Contains(all, secret) {
				t.Errorf("the log holds %q:\n%s", secret, all)
			}
		}
	})
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, s := range l {
		out[i], _ = s.(string)
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// metricSum adds up every sample of the metric name (all its labels) on the
// server at baseURL; 0 when there is none.
func metricSum(t testing.TB, baseURL, name string) float64 {
	t.Helper()
	sum := 0.0
	for _, line := range strings.Split(metricsText(t, baseURL), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndexByte(rest, ' ')+1:]), 64); err == nil {
			sum += f
		}
	}
	return sum
}

// Ensure that with -max-running-queries 1, queries sent at once take
// turns: some wait, /metrics shows their waits, every one is answered, and
// none is left waiting.
func TestQueriesTakeTurns(t *testing.T) {
	s := serve(t, config{db: filepath.Join(t.TempDir(), "deploygraph.db"), adminToken: rootToken, demo: true, maxRunningQueries: 1})
	const clients = 16
	query := `{ projects { nodes { fullPath environments { nodes { name lastDeployment { iid status } } } } } }`
	for round := 0; metricAt(t, s.url, "deploygraph_graphql_query_wait_seconds_count") <= 0; round++ {
		if round == 20 {
			t.Fatalf("%d queries sent at once, 20 times, never waited for the one turn", clients)
		}
		errs := make(chan error, clients)
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				_, data, err := postGraphQL(context.Background(), http.DefaultClient, s.url, rootToken, query, nil)
				if err == nil && len(list(data, "projects.nodes")) == 0 {
					err = fmt.Errorf("no projects in %v", data)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := metricAt(t, s.url, "deploygraph_graphql_queries_waiting"); got != 0 {
		t.Errorf("%v queries still waiting once all were answered", got)
	}
}
