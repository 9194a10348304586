package observe_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/deploygraph/deploygraph/graph/observe"
)

// Ensure that a subscription counts as active until it ends, once however
// often its end is reported, and that nil metrics record nothing.
func TestSubscriptionStarted(t *testing.T) {
	m := observe.NewMetrics()
	end1 := m.SubscriptionStarted()
	end2 := m.SubscriptionStarted()
	if got := testutil.ToFloat64(m.ActiveSubscriptions); got != 2 {
		t.Errorf("active: got %v, want 2", got)
	}
	end1()
	end1()
	if got := testutil.ToFloat64(m.ActiveSubscriptions); got != 1 {
		t.Errorf("active after one end reported twice: got %v, want 1", got)
	}
	end2()
	if got := testutil.ToFloat64(m.ActiveSubscriptions); got != 0 {
		t.Errorf("active after both ended: got %v, want 0", got)
	}

	var none *observe.Metrics
	none.SubscriptionStarted()()
	none.ObserveBatch("users", 3, true)
	none.ObserveTx("read", 0, nil)
}

// Ensure that the request id is the client's when it is plain and short,
// and a generated one otherwise, and that the log line carries it.
func TestMiddlewareRequestID(t *testing.T) {
	for _, tc := range []struct {
		name, incoming string
		keep           bool
	}{
		{"Plain", "abc-DEF_1.2", true},
		{"Missing", "", false},
		{"ErrSpaces", "a b", false},
		{"ErrQuote", `a"b`, false},
		{"ErrTooLong", string(bytes.Repeat([]byte("a"), 65)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := observe.Middleware(slog.New(slog.NewJSONHandler(&logs, nil)), nil,
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
			req := httptest.NewRequest(http.MethodGet, "/x?token=secret", nil)
			if tc.incoming != "" {
				req.Header.Set(observe.RequestIDHeader, tc.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			id := rec.Header().Get(observe.RequestIDHeader)
			if tc.keep && id != tc.incoming {
				t.Errorf("got id %q, want the client's %q", id, tc.incoming)
			}
			if !tc.keep && (id == "" || id == tc.incoming) {
				t.Errorf("got id %q, want a generated one", id)
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log: %v: %s", err, logs.Bytes())
			}
			if line["request_id"] != id || line["status"] != 418.0 || line["path"] != "/x" || line["outcome"] != "error" {
				t.Errorf("got log line %v, want request_id %s, status 418, path /x, outcome error", line, id)
			}
		})
	}
}
