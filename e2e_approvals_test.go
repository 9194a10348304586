package main

import (
	"fmt"
	"testing"
)

// approvalStoryDoc: a developer who deploys, two release-team members, a
// maintainer and a reporter in a private project with unprotected
// environments.
var approvalStoryDoc = map[string]any{
	"users": []map[string]any{
		{"id": 1, "username": "root", "name": "Root", "admin": true},
		{"id": 2, "username": "dev", "name": "Dev"},
		{"id": 3, "username": "g1", "name": "Group One"},
		{"id": 4, "username": "g2", "name": "Group Two"},
		{"id": 5, "username": "maint", "name": "Maint"},
		{"id": 6, "username": "rep", "name": "Rep"},
	},
	"groups": []map[string]any{{"id": 30, "name": "release-team", "path": "release-team", "full_path": "release-team",
		"members": []map[string]any{{"user_id": 3}, {"user_id": 4}}}},
	"projects": []map[string]any{{
		"id": 1, "name": "app", "path": "app", "path_with_namespace": "acme/app", "visibility": "private", "created_at": at(0),
		"members": []map[string]any{{"user_id": 2, "access_level": 30}, {"user_id": 3, "access_level": 30},
			{"user_id": 4, "access_level": 30}, {"user_id": 5, "access_level": 40}, {"user_id": 6, "access_level": 20}},
	}},
}

const deploymentState = `query($id: ID!) { node(id: $id) { ... on Deployment {
  status finishedAt pendingApprovalCount
  approvals { status user { username } representedAs }
  approvalSummary { status rules { accessLevelDescription requiredApprovals approvedCount pendingApprovalCount status canApprove } }
  userPermissions { updateDeployment approveDeployment }
} } }`

// Ensure that a protected environment with approval rules holds every new
// deployment until its rules have approved it, and that a rejection fails it.
func TestE2EApprovalStory(t *testing.T) {
	s := startServer(t, approvalStoryDoc)
	dev, g1, g2, maint, rep := s.tokenFor(t, 2), s.tokenFor(t, 3), s.tokenFor(t, 4), s.tokenFor(t, 5), s.tokenFor(t, 6)

	protect := s.mustQuery(t, maint, `mutation { protectEnvironment(input: {projectId: "acme/app", name: "production",
	  deployAccessLevels: [{accessLevel: DEVELOPER}],
	  approvalRules: [{groupId: "30", requiredApprovals: 2}, {accessLevel: MAINTAINER}]}) {
	  protectedEnvironment { name deployAccessLevels { description } approvalRules { group { name } accessLevel accessLevelDescription requiredApprovals } } } }`, nil)
	rules := list(protect, "protectEnvironment.protectedEnvironment.approvalRules")
	if got := fmt.Sprint(pluck(rules, "accessLevelDescription"), pluck(rules, "requiredApprovals")); got != "[release-team Maintainers] [2 1]" {
		t.Fatalf("approval rules %s, want release-team ×2 and Maintainers ×1", got)
	}

	deploy := func(token, sha string) string {
		t.Helper()
		data := s.mustQuery(t, token, `mutation($sha: String!) { createDeployment(input: {projectId: "acme/app", environment: "production",
		  sha: $sha, ref: "main", tag: false, status: SUCCESS}) { deployment { id status } } }`, map[string]any{"sha": sha})
		if got := get(data, "createDeployment.deployment.status"); got != "BLOCKED" {
			t.Fatalf("a new deployment on production is %v, want BLOCKED", got)
		}
		return get(data, "createDeployment.deployment.id").(string)
	}
	state := func(token, id string) map[string]any {
		t.Helper()
		return s.mustQuery(t, token, deploymentState, map[string]any{"id": id})["node"].(map[string]any)
	}
	approve := func(token, id, status, as string) gqlResponse {
		t.Helper()
		vars := map[string]any{"id": id, "status": status}
		if as != "" {
			vars["as"] = as
		}
		return s.query(t, token, `mutation($id: ID!, $status: DeploymentApprovalStatus!, $as: String) {
		  approveDeployment(input: {deploymentId: $id, status: $status, representedAs: $as, comment: "checked"}) {
		  approval { status user { username } representedAs } deployment { status pendingApprovalCount } } }`, vars)
	}
	checkState := func(step, id string, pending float64, summary string, approvedPerRule ...float64) {
		t.Helper()
		st := state(maint, id)
		if st["pendingApprovalCount"] != pending || get(st, "approvalSummary.status") != summary {
			t.Errorf("%s: pendingApprovalCount %v summary %v, want %v %s", step, st["pendingApprovalCount"], get(st, "approvalSummary.status"), pending, summary)
		}
		if got := pluck(list(st, "approvalSummary.rules"), "approvedCount"); fmt.Sprint(got) != fmt.Sprint(approvedPerRule) {
			t.Errorf("%s: approvedCount per rule %v, want %v", step, got, approvedPerRule)
		}
	}

	id := deploy(dev, sha(9001))
	checkState("blocked", id, 3, "PENDING_APPROVAL", 0, 0)
	if r := s.query(t, dev, `mutation($id: ID!) { updateDeployment(input: {deploymentId: $id, status: RUNNING}) { deployment { status } } }`, map[string]any{"id": id}); fmt.Sprint(r.codes()) != "[FAILED_PRECONDITION]" {
		t.Errorf("running a deployment waiting for approvals: %s, want FAILED_PRECONDITION", r.raw)
	}
	if r := approve(dev, id, "APPROVED", ""); fmt.Sprint(r.codes()) != "[FORBIDDEN]" || r.Errors[0].Message != "You cannot approve your own deployment." {
		t.Errorf("self-approval: %s, want FORBIDDEN You cannot approve your own deployment.", r.raw)
	}
	if got := get(state(g1, id), "userPermissions.approveDeployment"); got != true {
		t.Errorf("userPermissions.approveDeployment for a release-team member: %v, want true", got)
	}
	if r := approve(g1, id, "APPROVED", ""); len(r.Errors) > 0 {
		t.Fatalf("first group approval: %s", r.raw)
	}
	checkState("one group approval", id, 2, "PENDING_APPROVAL", 1, 0)
	if r := approve(g2, id, "APPROVED", "release-team"); len(r.Errors) > 0 {
		t.Fatalf("second group approval: %s", r.raw)
	}
	checkState("group rule satisfied", id, 1, "PENDING_APPROVAL", 2, 0)
	if r := approve(maint, id, "APPROVED", "Maintainers"); len(r.Errors) > 0 || get(r.Data, "approveDeployment.deployment.status") != "BLOCKED" {
		t.Fatalf("maintainer approval: %s, want the deployment still BLOCKED, now free to run", r.raw)
	}
	checkState("approved", id, 0, "APPROVED", 2, 1)
	for _, status := range []string{"RUNNING", "SUCCESS"} {
		s.mustQuery(t, dev, `mutation($id: ID!, $st: DeploymentStatus!) { updateDeployment(input: {deploymentId: $id, status: $st}) { deployment { status } } }`, map[string]any{"id": id, "st": status})
	}
	if st := state(maint, id); st["status"] != "SUCCESS" || st["finishedAt"] == nil {
		t.Errorf("after running: %v, want SUCCESS with finishedAt", st)
	}
	if r := approve(rep, id, "APPROVED", ""); fmt.Sprint(r.codes()) != "[FAILED_PRECONDITION]" {
		t.Errorf("approving a finished deployment: %s, want FAILED_PRECONDITION", r.raw)
	}

	rejected := deploy(dev, sha(9002))
	if r := approve(g1, rejected, "REJECTED", ""); len(r.Errors) > 0 || get(r.Data, "approveDeployment.deployment.status") != "FAILED" {
		t.Fatalf("rejection: %s, want the deployment FAILED", r.raw)
	}
	if st := state(maint, rejected); st["finishedAt"] == nil || get(st, "approvalSummary.status") != "REJECTED" {
		t.Errorf("after rejection: %v, want finishedAt set and summary REJECTED", st)
	}
}

// Ensure that approveDeployment's six checks answer in order, each with its
// code and message (SPEC 6.4).
func TestE2EApprovalChecks(t *testing.T) {
	s := startServer(t, approvalStoryDoc)
	dev, g1, maint, rep := s.tokenFor(t, 2), s.tokenFor(t, 3), s.tokenFor(t, 5), s.tokenFor(t, 6)
	s.mustQuery(t, maint, `mutation { a: protectEnvironment(input: {projectId: "acme/app", name: "production",
	  deployAccessLevels: [{accessLevel: DEVELOPER}], approvalRules: [{groupId: "30"}]}) { protectedEnvironment { name } }
	  b: protectEnvironment(input: {projectId: "acme/app", name: "canary", deployAccessLevels: [{accessLevel: DEVELOPER}]}) { protectedEnvironment { name } } }`, nil)
	create := func(env string, n int) string {
		data := s.mustQuery(t, dev, `mutation($env: String!, $sha: String!) { createDeployment(input: {projectId: "acme/app", environment: $env,
		  sha: $sha, ref: "main", tag: false, status: RUNNING}) { deployment { id } } }`, map[string]any{"env": env, "sha": sha(n)})
		return get(data, "createDeployment.deployment.id").(string)
	}
	unprotected, unconfigured, blocked, blocked2 := create("staging", 1), create("canary", 2), create("production", 3), create("production", 4)
	s.mustQuery(t, dev, `mutation($id: ID!) { updateDeployment(input: {deploymentId: $id, status: CANCELED}) { deployment { status } } }`, map[string]any{"id": blocked2})

	cases := []struct {
		name, token, id, status, as, code, message string
	}{
		{"1 NotProtected", g1, unprotected, "APPROVED", "", "FAILED_PRECONDITION", "This environment is not protected."},
		{"2 SelfApproval", dev, unconfigured, "APPROVED", "", "FORBIDDEN", "You cannot approve your own deployment."},
		{"3 NoApprovalRules", g1, unconfigured, "APPROVED", "", "FAILED_PRECONDITION", "Deployment approvals is not configured for this environment."},
		{"4 NotWaiting", g1, blocked2, "APPROVED", "", "FAILED_PRECONDITION", "This deployment is not waiting for approvals."},
		{"5 NoMatchingRule", rep, blocked, "APPROVED", "", "FORBIDDEN", "You don't have permission to approve this deployment."},
		{"6 RepresentedAsMatchesNoRule", g1, blocked, "APPROVED", "security", "BAD_USER_INPUT", ""},
		{"SelfRejectionIsAllowed", dev, blocked, "REJECTED", "", "FORBIDDEN", "You don't have permission to approve this deployment."},
		{"Anonymous", "", blocked, "APPROVED", "", "UNAUTHENTICATED", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]any{"id": tc.id, "status": tc.status}
			if tc.as != "" {
				vars["as"] = tc.as
			}
			r := s.query(t, tc.token, `mutation($id: ID!, $status: DeploymentApprovalStatus!, $as: String) {
			  approveDeployment(input: {deploymentId: $id, status: $status, representedAs: $as}) { approval { status } } }`, vars)
			if fmt.Sprint(r.codes()) != "["+tc.code+"]" || tc.message != "" && r.Errors[0].Message != tc.message {
				t.Errorf("got %s, want %s %q", r.raw, tc.code, tc.message)
			}
		})
	}
}
