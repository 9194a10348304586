package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"time"
)

// Users of the generated fixture and their roles in project 1 (acme/app,
// private) and project 2 (acme/site, public).
const (
	userRoot       = 1 // admin
	userDeveloper  = 2 // DEVELOPER in acme/app, member of group approvers
	userReporter   = 3 // REPORTER
	userGuest      = 4 // GUEST
	userMaintainer = 5 // MAINTAINER
	userOutsider   = 6 // no membership
	groupApprovers = 10
)

var fixtureBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func at(minutes int) string {
	return fixtureBase.Add(time.Duration(minutes) * time.Minute).Format(time.RFC3339Nano)
}

func sha(i int) string {
	h := sha1.Sum([]byte(fmt.Sprint("commit-", i)))
	return hex.EncodeToString(h[:])
}

// fixtureStatuses cycles through every status a deployment can have.
var fixtureStatuses = []string{"success", "success", "failed", "running", "success", "canceled", "created", "success", "skipped", "blocked"}

var fixtureEnvs = []map[string]any{
	{"id": 1, "name": "production", "state": "available", "created_at": at(0), "updated_at": at(1)},
	{"id": 2, "name": "staging", "state": "available", "created_at": at(0), "updated_at": at(2)},
	{"id": 3, "name": "review/fix-foo", "state": "stopped", "created_at": at(0), "updated_at": at(3)},
}

// fixtureDoc builds an import document with n deployments in acme/app,
// spread over its three environments, each with a CI job, pipeline and
// commit, an approval on every tenth and two merge requests each.
func fixtureDoc(n int) map[string]any {
	users := []map[string]any{
		{"id": userRoot, "username": "root", "name": "Administrator", "state": "active", "admin": true},
		{"id": userDeveloper, "username": "dev", "name": "Dev Eloper", "state": "active"},
		{"id": userReporter, "username": "rep", "name": "Rep Orter", "state": "active"},
		{"id": userGuest, "username": "guest", "name": "Guest User", "state": "active"},
		{"id": userMaintainer, "username": "maint", "name": "Main Tainer", "state": "active"},
		{"id": userOutsider, "username": "outsider", "name": "Out Sider", "state": "active"},
	}
	var deployments, mrs, links []map[string]any
	for i := 1; i <= n; i++ {
		env := fixtureEnvs[(i-1)%len(fixtureEnvs)]
		status := fixtureStatuses[(i-1)%len(fixtureStatuses)]
		ref := []string{"main", "develop", "feature/a"}[i%3]
		var finished any
		if status == "success" || status == "failed" || status == "canceled" {
			finished = at(10*i + 5)
		}
		d := map[string]any{
			"id": i, "iid": i, "ref": ref, "sha": sha(i), "tag": false, "status": status,
			"created_at": at(10 * i), "updated_at": at(10*i + 6 + i%4), "finished_at": finished,
			"user":        map[string]any{"id": []int{userRoot, userDeveloper, userMaintainer}[i%3]},
			"environment": map[string]any{"id": env["id"], "name": env["name"]},
			"deployable": map[string]any{
				"id": 1000 + i, "name": "deploy", "stage": "deploy", "status": "success", "ref": ref, "tag": false,
				"created_at": at(10 * i), "user": map[string]any{"id": userRoot},
				"commit":   map[string]any{"id": sha(i), "message": fmt.Sprintf("Change %d\n\nDetails", i), "author_name": "Dev"},
				"pipeline": map[string]any{"id": 2000 + i, "sha": sha(i), "ref": ref, "status": "success"},
			},
		}
		if i%10 == 0 {
			d["approvals"] = []map[string]any{{"user": map[string]any{"id": userDeveloper}, "status": "approved", "created_at": at(10*i + 1)}}
		}
		deployments = append(deployments, d)
		for k := 0; k < 2; k++ {
			id := 2*i + k
			mrs = append(mrs, map[string]any{
				"id": id, "iid": id, "title": fmt.Sprintf("MR %d", id), "state": "merged",
				"source_branch": fmt.Sprintf("topic-%d", id), "target_branch": ref,
				"author": map[string]any{"id": userDeveloper}, "labels": []string{"backend"},
				"created_at": at(10*i - 5 + k), "updated_at": at(10*i - 4 + k), "merged_at": at(10*i - 3 + k),
			})
			links = append(links, map[string]any{"deployment_id": i, "merge_request_id": id})
		}
	}
	return map[string]any{
		"users":  users,
		"groups": []map[string]any{{"id": groupApprovers, "name": "approvers", "path": "approvers", "full_path": "approvers", "members": []map[string]any{{"user_id": userDeveloper}}}},
		"projects": []map[string]any{{
			"id": 1, "name": "app", "path": "app", "path_with_namespace": "acme/app", "visibility": "private", "created_at": at(0),
			"members": []map[string]any{
				{"user_id": userDeveloper, "access_level": 30}, {"user_id": userReporter, "access_level": 20},
				{"user_id": userGuest, "access_level": 10}, {"user_id": userMaintainer, "access_level": 40},
			},
			"protected_environments": []map[string]any{{
				"name": "production", "deploy_access_levels": []map[string]any{{"access_level": 40}},
				"approval_rules": []map[string]any{{"group_id": groupApprovers, "required_approvals": 1}, {"access_level": 40, "required_approvals": 1}},
			}},
			"environments": fixtureEnvs, "deployments": deployments,
			"merge_requests": mrs, "deployment_merge_requests": links,
		}, {
			"id": 2, "name": "site", "path": "site", "path_with_namespace": "acme/site", "visibility": "public", "created_at": at(0),
			"environments": []map[string]any{{"id": 50, "name": "production", "state": "available", "created_at": at(0), "updated_at": at(0)}},
			"deployments": []map[string]any{{
				"id": 5000, "iid": 1, "ref": "main", "sha": sha(5000), "tag": false, "status": "success",
				"created_at": at(1), "updated_at": at(2), "finished_at": at(2),
				"user": map[string]any{"id": userRoot}, "environment": map[string]any{"id": 50, "name": "production"},
			}},
		}, {
			"id": 3, "name": "tools", "path": "tools", "path_with_namespace": "acme/tools", "visibility": "internal", "created_at": at(0),
		}},
	}
}
