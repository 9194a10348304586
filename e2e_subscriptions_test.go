package main

// End-to-end tests of subscriptions (SPEC 6.6): a real server, mutations
// over HTTP, events over a real WebSocket (graphql-transport-ws).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/deploygraph/deploygraph/graph"
)

const (
	envEventsSub = `subscription($p: ID!) { environmentEvents(projectId: $p) { kind environmentId environment { name state } } }`
	depEventsSub = `subscription($p: ID!, $e: String) { deploymentEvents(projectId: $p, environment: $e) {
		kind deploymentId deployment { iid status environment { name } } } }`
)

// event is what a test compares of an event: its kind, the number of its
// object, and a summary of the object as delivered ("" once deleted).
type event struct {
	Kind   string
	ID     int64
	Object string
}

// eventOf returns the reader of subscription field's events, which name
// an object of type typ at key+"Id" and deliver it at key, summarised by
// summary: environment and deployment events differ only in these.
func eventOf(field, key, typ string, summary func(object any) string) func(testing.TB, map[string]any) event {
	return func(t testing.TB, d map[string]any) event {
		t.Helper()
		e := event{Kind: get(d, field+".kind").(string), ID: gidNumber(t, get(d, field+"."+key+"Id"), typ)}
		if object := get(d, field+"."+key); object != nil {
			e.Object = summary(object)
		}
		return e
	}
}

var (
	envEventOf = eventOf("environmentEvents", "environment", "Environment", func(env any) string {
		return fmt.Sprintf("%s %s", get(env, "name"), get(env, "state"))
	})
	depEventOf = eventOf("deploymentEvents", "deployment", "Deployment", func(dep any) string {
		return fmt.Sprintf("%s in %s", get(dep, "status"), get(dep, "environment.name"))
	})
)

// expectEvents reads len(want) events of operation id and compares them.
func (c *wsClient) expectEvents(t testing.TB, id string, of func(testing.TB, map[string]any) event, want ...event) {
	t.Helper()
	var got []event
	for range want {
		got = append(got, of(t, c.nextData(t, id)))
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s events:\n got  %+v\n want %+v", id, got, want)
	}
}

func mustID(t testing.TB, payload map[string]any, path, typ string) int64 {
	t.Helper()
	return gidNumber(t, get(payload, path), typ)
}

// TestE2ESubscriptionEvents: subscribers see every change made over HTTP,
// as it happened, with the object as it is; the environment filter keeps
// one environment's deployments.
func TestE2ESubscriptionEvents(t *testing.T) {
	s := startServer(t, fixtureDoc(30))
	dev, maint, rep := s.tokenFor(t, userDeveloper), s.tokenFor(t, userMaintainer), s.tokenFor(t, userReporter)
	envs, deps, staging := wsConnect(t, s, rep), wsConnect(t, s, rep), wsConnect(t, s, rep)
	envs.subscribe(t, "envs", envEventsSub, map[string]any{"p": "acme/app"})
	deps.subscribe(t, "deps", depEventsSub, map[string]any{"p": "acme/app"})
	staging.subscribe(t, "staging", depEventsSub, map[string]any{"p": "1", "e": "staging"})
	waitSubscribers(t, s, 3)

	create := func(env, status string, i int) int64 {
		p := wMustMutate(t, s, dev, "createDeployment", "deployment { id }", map[string]any{
			"projectId": "acme/app", "environment": env, "sha": wSHA(i), "ref": "main", "tag": false, "status": status})
		return mustID(t, p, "deployment.id", "Deployment")
	}
	update := func(id int64, status string) {
		wMustMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": id, "status": status})
	}

	qa := mustID(t, wMustMutate(t, s, dev, "createEnvironment", "environment { id }", map[string]any{"projectId": "acme/app", "name": "qa"}), "environment.id", "Environment")
	envs.expectEvents(t, "envs", envEventOf, event{"CREATED", qa, "qa AVAILABLE"})

	onQA := create("qa", "RUNNING", 1)
	deps.expectEvents(t, "deps", depEventOf, event{"CREATED", onQA, "RUNNING in qa"})
	update(onQA, "SUCCESS")
	deps.expectEvents(t, "deps", depEventOf, event{"UPDATED", onQA, "SUCCESS in qa"})

	onStaging := create("staging", "RUNNING", 2)
	deps.expectEvents(t, "deps", depEventOf, event{"CREATED", onStaging, "RUNNING in staging"})
	staging.expectEvents(t, "staging", depEventOf, event{"CREATED", onStaging, "RUNNING in staging"})
	update(onStaging, "CANCELED")
	deps.expectEvents(t, "deps", depEventOf, event{"UPDATED", onStaging, "CANCELED in staging"})
	staging.expectEvents(t, "staging", depEventOf, event{"UPDATED", onStaging, "CANCELED in staging"})

	// A success in a stopped environment restarts it.
	onReview := create("review/fix-foo", "SUCCESS", 3)
	deps.expectEvents(t, "deps", depEventOf, event{"CREATED", onReview, "SUCCESS in review/fix-foo"})
	envs.expectEvents(t, "envs", envEventOf, event{"UPDATED", 3, "review/fix-foo AVAILABLE"})

	wMustMutate(t, s, dev, "stopEnvironment", "environment { id }", map[string]any{"environmentId": qa})
	envs.expectEvents(t, "envs", envEventOf, event{"STOPPED", qa, "qa STOPPED"})

	wMustMutate(t, s, maint, "deleteDeployment", "deletedDeploymentId", map[string]any{"deploymentId": onStaging})
	deps.expectEvents(t, "deps", depEventOf, event{"DELETED", onStaging, ""})
	staging.expectEvents(t, "staging", depEventOf, event{"DELETED", onStaging, ""})

	// Deleting an environment deletes its deployments first.
	wMustMutate(t, s, dev, "deleteEnvironment", "deletedEnvironmentId", map[string]any{"environmentId": qa})
	deps.expectEvents(t, "deps", depEventOf, event{"DELETED", onQA, ""})
	envs.expectEvents(t, "envs", envEventOf, event{"DELETED", qa, ""})

	// The filtered subscriber saw none of the other environments' events:
	// its next event is the next staging one.
	last := create("staging", "CREATED", 4)
	staging.expectEvents(t, "staging", depEventOf, event{"CREATED", last, "CREATED in staging"})
	deps.expectEvents(t, "deps", depEventOf, event{"CREATED", last, "CREATED in staging"})
	envs.expectNothing(t)
}

// TestE2ESubscriptionCommitOrder: concurrent writers over HTTP; the
// subscriber sees each deployment created once, in commit order (ids are
// allocated in commit order).
func TestE2ESubscriptionCommitOrder(t *testing.T) {
	s := startServer(t, fixtureDoc(30))
	dev := s.tokenFor(t, userDeveloper)
	c := wsConnect(t, s, dev)
	c.subscribe(t, "deps", `subscription { deploymentEvents(projectId: "acme/app") { kind deploymentId } }`, nil)
	waitSubscribers(t, s, 1)

	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, gqlErrs, err := wPost(s.url, dev, `mutation($in: CreateDeploymentInput!) { createDeployment(input: $in) { deployment { id } } }`,
					map[string]any{"in": map[string]any{"projectId": "acme/app", "environment": "staging", "sha": wSHA(100*w + i), "ref": "main", "tag": false, "status": "RUNNING"}})
				if err == nil && len(gqlErrs) > 0 {
					err = fmt.Errorf("%s", gqlErrs[0].Message)
				}
				errs <- err
			}
		})
	}
	var ids []int64
	for range writers * each {
		d := c.nextData(t, "deps")
		if k := get(d, "deploymentEvents.kind"); k != "CREATED" {
			t.Fatalf("got %v, want CREATED", k)
		}
		ids = append(ids, gidNumber(t, get(d, "deploymentEvents.deploymentId"), "Deployment"))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("deployments not in commit order, or repeated: %v", ids)
	}
}

// TestE2ESubscriptionNothingForFailedMutations: a mutation that fails
// publishes nothing.
func TestE2ESubscriptionNothingForFailedMutations(t *testing.T) {
	s := startServer(t, fixtureDoc(30))
	dev := s.tokenFor(t, userDeveloper)
	envs, deps := wsConnect(t, s, dev), wsConnect(t, s, dev)
	envs.subscribe(t, "envs", envEventsSub, map[string]any{"p": "acme/app"})
	deps.subscribe(t, "deps", depEventsSub, map[string]any{"p": "acme/app"})
	waitSubscribers(t, s, 2)

	wRefused(t, wMutate(t, s, dev, "createEnvironment", "environment { id }", map[string]any{"projectId": "acme/app", "name": "staging"}), "createEnvironment", "CONFLICT", "")
	wRefused(t, wMutate(t, s, dev, "createDeployment", "deployment { id }", map[string]any{
		"projectId": "acme/app", "environment": "production", "sha": wSHA(1), "ref": "main", "tag": false, "status": "RUNNING"}), "createDeployment", "FORBIDDEN", "")
	wRefused(t, wMutate(t, s, dev, "createDeployment", "deployment { id }", map[string]any{
		"projectId": "acme/app", "environment": "brand-new", "sha": "not-a-sha", "ref": "main", "tag": false, "status": "RUNNING"}), "createDeployment", "BAD_USER_INPUT", "")
	wRefused(t, wMutate(t, s, dev, "deleteEnvironment", "deletedEnvironmentId", map[string]any{"environmentId": 2}), "deleteEnvironment", "FAILED_PRECONDITION", "")
	wRefused(t, wMutate(t, s, dev, "updateDeployment", "deployment { id }", map[string]any{"deploymentId": 1, "status": "RUNNING"}), "updateDeployment", "FORBIDDEN", "")

	// The first events are those of the first mutation that succeeds.
	p := wMustMutate(t, s, dev, "createDeployment", "deployment { id environment { id } }", map[string]any{
		"projectId": "acme/app", "environment": "after", "sha": wSHA(2), "ref": "main", "tag": false, "status": "RUNNING"})
	envs.expectEvents(t, "envs", envEventOf, event{"CREATED", mustID(t, p, "deployment.environment.id", "Environment"), "after AVAILABLE"})
	deps.expectEvents(t, "deps", depEventOf, event{"CREATED", mustID(t, p, "deployment.id", "Deployment"), "RUNNING in after"})
}

// TestE2ESubscriptionAccess: only readers of a project may subscribe to it;
// a token that does not authenticate is refused at connection_init.
func TestE2ESubscriptionAccess(t *testing.T) {
	s := startServer(t, fixtureDoc(12))
	dev := s.tokenFor(t, userDeveloper)

	t.Run("ErrProjectNotFound", func(t *testing.T) {
		cases := []struct{ name, token, project string }{
			{"outsider, private project", s.tokenFor(t, userOutsider), "acme/app"},
			{"anonymous, private project", "", "acme/app"},
			{"anonymous, internal project", "", "acme/tools"},
			{"unknown project", dev, "acme/nothing"},
			{"unknown project number", dev, "999"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := wsConnect(t, s, tc.token)
				c.subscribe(t, "1", envEventsSub, map[string]any{"p": tc.project})
				if codes := c.nextError(t, "1"); !slices.Equal(codes, []string{"NOT_FOUND"}) {
					t.Errorf("codes: got %v, want [NOT_FOUND]", codes)
				}
			})
		}
	})
	t.Run("ErrGuestCannotReadContents", func(t *testing.T) {
		c := wsConnect(t, s, s.tokenFor(t, userGuest))
		c.subscribe(t, "1", depEventsSub, map[string]any{"p": "acme/app"})
		if codes := c.nextError(t, "1"); !slices.Equal(codes, []string{"FORBIDDEN"}) {
			t.Errorf("codes: got %v, want [FORBIDDEN]", codes)
		}
	})
	t.Run("ErrBadTokenRefusedAtConnectionInit", func(t *testing.T) {
		secret, id := mintToken(t, s, userDeveloper, "soon revoked", nil)
		revokeToken(t, s, id)
		payloads := map[string]map[string]any{
			"unknown":       {"authorization": "Bearer nope"},
			"revoked":       {"authorization": "Bearer " + secret},
			"not bearer":    {"authorization": "Basic " + dev},
			"blank":         {"authorization": ""},
			"private token": {"PRIVATE-TOKEN": "nope"},
		}
		for name, payload := range payloads {
			t.Run(name, func(t *testing.T) {
				conn, err := wsDial(t, s, payload, nil)
				if err == nil {
					conn.CloseNow()
					t.Fatal("the connection was acknowledged")
				}
				if code := wsCloseStatus(t, err); code != 4403 {
					t.Errorf("close: got %d (%v), want 4403", code, err)
				}
			})
		}
	})
	t.Run("PrivateTokenKey", func(t *testing.T) {
		conn, err := wsDial(t, s, map[string]any{"PRIVATE-TOKEN": dev}, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn.CloseNow()
	})
	t.Run("AnonymousReadsPublicProjects", func(t *testing.T) {
		c := wsConnect(t, s, "")
		c.subscribe(t, "1", envEventsSub, map[string]any{"p": "acme/site"})
		waitSubscribers(t, s, 1)
		p := wMustMutate(t, s, rootToken, "createEnvironment", "environment { id }", map[string]any{"projectId": "acme/site", "name": "staging"})
		c.expectEvents(t, "1", envEventOf, event{"CREATED", mustID(t, p, "environment.id", "Environment"), "staging AVAILABLE"})
		c.conn.CloseNow()
		waitSubscribers(t, s, 0)
	})
	t.Run("ErrOtherOrigin", func(t *testing.T) {
		_, err := wsDial(t, s, nil, http.Header{"Origin": {"https://elsewhere.example"}})
		var refused *wsRefused
		if !errors.As(err, &refused) || refused.status != http.StatusForbidden {
			t.Errorf("got %v, want 403", err)
		}
		// The server's own pages may.
		conn, err := wsDial(t, s, nil, http.Header{"Origin": {s.url}})
		if err != nil {
			t.Fatalf("same origin: %v", err)
		}
		conn.CloseNow()
	})
	t.Run("ErrSubscriptionOverHTTP", func(t *testing.T) {
		r := s.query(t, dev, `subscription { environmentEvents(projectId: "acme/app") { kind } }`, nil)
		expectError(t, r, "BAD_REQUEST", "WebSocket")
	})
}

// TestE2ESubscriptionLosesAccess: a subscriber who can no longer read the
// project gets an error instead of the next event, and the subscription
// ends.
func TestE2ESubscriptionLosesAccess(t *testing.T) {
	s := startServer(t, fixtureDoc(12))
	createEnv := func(project, name string) int64 {
		p := wMustMutate(t, s, rootToken, "createEnvironment", "environment { id }", map[string]any{"projectId": project, "name": name})
		return mustID(t, p, "environment.id", "Environment")
	}

	t.Run("MemberRemoved", func(t *testing.T) {
		c := wsConnect(t, s, s.tokenFor(t, userReporter))
		c.subscribe(t, "1", envEventsSub, map[string]any{"p": "acme/app"})
		waitSubscribers(t, s, 1)
		c.expectEvents(t, "1", envEventOf, event{"CREATED", createEnv("acme/app", "one"), "one AVAILABLE"})
		wMustMutate(t, s, rootToken, "removeProjectMember", "project { id }", map[string]any{"projectId": "acme/app", "userId": userReporter})
		createEnv("acme/app", "two")
		if codes := c.nextError(t, "1"); !slices.Equal(codes, []string{"NOT_FOUND"}) {
			t.Errorf("codes: got %v, want [NOT_FOUND]", codes)
		}
		waitSubscribers(t, s, 0)
	})
	t.Run("ProjectMadePrivate", func(t *testing.T) {
		c := wsConnect(t, s, "")
		c.subscribe(t, "1", envEventsSub, map[string]any{"p": "acme/site"})
		waitSubscribers(t, s, 1)
		c.expectEvents(t, "1", envEventOf, event{"CREATED", createEnv("acme/site", "one"), "one AVAILABLE"})
		wMustMutate(t, s, rootToken, "updateProject", "project { id }", map[string]any{"projectId": "acme/site", "visibility": "PRIVATE"})
		createEnv("acme/site", "two")
		if codes := c.nextError(t, "1"); !slices.Equal(codes, []string{"NOT_FOUND"}) {
			t.Errorf("codes: got %v, want [NOT_FOUND]", codes)
		}
		waitSubscribers(t, s, 0)
	})
	t.Run("TokenRevoked", func(t *testing.T) {
		secret, id := mintToken(t, s, userMaintainer, "revoked while listening", nil)
		c := wsConnect(t, s, secret)
		c.subscribe(t, "1", envEventsSub, map[string]any{"p": "acme/app"})
		waitSubscribers(t, s, 1)
		c.expectEvents(t, "1", envEventOf, event{"CREATED", createEnv("acme/app", "three"), "three AVAILABLE"})
		revokeToken(t, s, id)
		createEnv("acme/app", "four")
		if codes := c.nextError(t, "1"); !slices.Equal(codes, []string{"UNAUTHENTICATED"}) {
			t.Errorf("codes: got %v, want [UNAUTHENTICATED]", codes)
		}
		waitSubscribers(t, s, 0)
	})
}

// TestE2ESubscriptionSlowSubscriber: a subscriber that never reads does not
// hold up writers; it is disconnected, while a subscriber that keeps up
// receives every event.
func TestE2ESubscriptionSlowSubscriber(t *testing.T) {
	// Pings so rare that only the server's decision can end the stalled
	// connection within the test.
	s := startGraphServer(t, fixtureDoc(300), graph.Options{KeepAlive: time.Hour})
	dev := s.tokenFor(t, userDeveloper)

	// The stalled client asks for large events (a page of 100 deployments
	// each), so that its connection's buffers fill after a few hundred.
	stalled, err := wsDial(t, s, map[string]any{"authorization": "Bearer " + dev}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"query": `subscription { environmentEvents(projectId: "acme/app") {
		kind environment { project { deployments(first: 100) { nodes { id iid ref sha status createdAt updatedAt finishedAt user { username } } } } } } }`})
	if err := wsWrite(context.Background(), stalled, wsMessage{ID: "big", Type: "subscribe", Payload: payload}); err != nil {
		t.Fatal(err)
	}
	reader := wsConnect(t, s, dev)
	reader.subscribe(t, "small", `subscription { environmentEvents(projectId: "acme/app") { kind environmentId } }`, nil)
	waitSubscribers(t, s, 2)

	const writes = 2000
	received := make(chan []int64)
	go func() {
		var ids []int64
		for range writes {
			select {
			case m := <-reader.msgs:
				var r struct{ Data map[string]any }
				json.Unmarshal(m.Payload, &r)
				n, _ := get(r.Data, "environmentEvents.environmentId").(string)
				var id int64
				fmt.Sscanf(n, "gid://deploygraph/Environment/%d", &id)
				ids = append(ids, id)
			case <-time.After(wsWait):
				received <- ids
				return
			}
		}
		received <- ids
	}()
	for i := range writes {
		_, errs, err := wPost(s.url, dev, `mutation($in: CreateEnvironmentInput!) { createEnvironment(input: $in) { environment { id } } }`,
			map[string]any{"in": map[string]any{"projectId": "acme/app", "name": fmt.Sprintf("env-%d", i)}})
		if err != nil || len(errs) > 0 {
			t.Fatalf("write %d: %v %v", i, err, errs)
		}
	}

	ids := <-received
	if len(ids) != writes || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != writes {
		t.Errorf("the reading subscriber got %d events (in order and distinct: %v), want %d", len(ids), slices.IsSorted(ids), writes)
	}
	// The stalled client now finds what was sent before it was cut off,
	// then the end of the connection.
	nexts := 0
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	for {
		_, data, err := stalled.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the stalled subscriber is still connected after %d events", nexts)
			}
			if code := wsCloseStatus(t, err); code != -1 && code != websocket.StatusPolicyViolation {
				t.Errorf("closed with %d, want %d or a dropped connection", code, websocket.StatusPolicyViolation)
			}
			break
		}
		if bytes.Contains(data, []byte(`"type":"next"`)) {
			nexts++
		}
	}
	if nexts >= writes {
		t.Errorf("the stalled subscriber got all %d events", nexts)
	}
	waitSubscribers(t, s, 1)
}

// Ensure that /metrics counts the subscriptions being served, and stops
// counting one when its client goes away.
func TestE2ESubscriptionsAreCounted(t *testing.T) {
	s, _ := startObservedServer(t)
	const active = "deploygraph_graphql_active_subscriptions"
	if got := metricAt(t, s.url, active); got != 0 {
		t.Fatalf("active subscriptions before any: %v", got)
	}
	c := wsConnect(t, s, rootToken)
	c.subscribe(t, "envs", envEventsSub, map[string]any{"p": "qa-group/website"})
	waitSubscribers(t, s, 1)
	if got := metricAt(t, s.url, active); got != 1 {
		t.Fatalf("active subscriptions with one open: %v", got)
	}
	c.conn.CloseNow()
	waitFor(t, wsWait, "no active subscription after the client left", func() bool { return metricAt(t, s.url, active) == 0 })
}
