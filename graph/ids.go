package graph

import (
	"strconv"
	"strings"

	"github.com/deploygraph/deploygraph/graph/model"
	"github.com/deploygraph/deploygraph/store"
)

// Global IDs name a type and its REST id: gid://deploygraph/Deployment/42.
const gidPrefix = model.GIDPrefix

// Types that have global IDs.
const (
	typeProject      = "Project"
	typeEnvironment  = "Environment"
	typeDeployment   = "Deployment"
	typeJob          = "Job"
	typePipeline     = "Pipeline"
	typeUser         = "User"
	typeGroup        = "Group"
	typeAccessToken  = "AccessToken"
	typeMergeRequest = "MergeRequest"
)

func globalID(typ string, id int64) string {
	return gidPrefix + typ + "/" + strconv.FormatInt(id, 10)
}

// parseGlobalID splits a global ID into its type and number.
func parseGlobalID(s string) (typ string, id int64, err error) {
	rest, ok := strings.CutPrefix(s, gidPrefix)
	if ok {
		typ, num, found := strings.Cut(rest, "/")
		// Only the form globalID writes: digits without a sign or leading
		// zeros, so that one object has one global ID.
		if found && typ != "" && isNumber(num) && num[0] != '0' {
			if id, err := strconv.ParseInt(num, 10, 64); err == nil && id > 0 {
				return typ, id, nil
			}
		}
	}
	return "", 0, store.Errorf(store.EInvalid, "%q is not a valid global ID (gid://deploygraph/<Type>/<number>)", s)
}

// parseID reads a reference to an object of type typ: its global ID or its
// bare number.
func parseID(s, typ string) (int64, error) {
	if isNumber(s) {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return 0, store.Errorf(store.EInvalid, "%q is not a valid %s ID", s, typ)
		}
		return id, nil
	}
	got, id, err := parseGlobalID(s)
	if err != nil {
		return 0, err
	}
	if got != typ {
		return 0, store.Errorf(store.EInvalid, "%q is not a %s ID", s, typ)
	}
	return id, nil
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
