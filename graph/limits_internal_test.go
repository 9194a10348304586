package graph

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A request past its deadline answers 503 with the timeout error, even
// when its handler only notices late; one that answers in time, or began
// answering in time, is left alone.
func TestWithDeadline(t *testing.T) {
	const timeout = 50 * time.Millisecond
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantBody   string
	}{{
		name: "answers in time",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"data":{}}`))
		},
		wantStatus: http.StatusOK,
		wantBody:   `{"data":{}}`,
	}, {
		name: "waits on its context",
		handler: func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			w.Header().Set("X-Partial", "yes")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`{"data":null}`))
		},
		wantStatus: http.StatusServiceUnavailable,
		wantBody:   timeoutBody,
	}, {
		name: "ignores its context",
		handler: func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(2 * timeout)
			w.Write([]byte(`{"data":null}`))
		},
		wantStatus: http.StatusServiceUnavailable,
		wantBody:   timeoutBody,
	}, {
		name: "began in time",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"data":`))
			<-r.Context().Done()
			w.Write([]byte(`{}}`))
		},
		wantStatus: http.StatusOK,
		wantBody:   `{"data":{}}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(withDeadline(timeout, tt.handler))
			defer srv.Close()
			resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == http.StatusServiceUnavailable {
				if ct := resp.Header.Get("Content-Type"); ct != mediaJSON || resp.Header.Get("X-Partial") != "" {
					t.Fatalf("timeout answer has Content-Type %q and the late handler's headers %v", ct, resp.Header)
				}
			}
		})
	}
}

// A body that trickles in past the deadline does not hold the request.
func TestWithDeadlineEndsSlowBodies(t *testing.T) {
	const timeout = 50 * time.Millisecond
	srv := httptest.NewServer(withDeadline(timeout, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err == nil {
			t.Error("the body was read to its end")
		}
		w.Write([]byte(`{"data":null}`))
	})))
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"query":`)) // and nothing more
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
}
