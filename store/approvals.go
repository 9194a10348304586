package store

import (
	"slices"
	"strings"
)

// Approver is what matching a rule needs to know of a user.
type Approver struct {
	UserID   int64
	Admin    bool
	Level    AccessLevel // role in the deployment's project
	GroupIDs []int64
}

// Matches reports whether the rule admits the user: by user id, group
// membership, or a role at or above the rule's level. Admins match every
// rule.
func (r Rule) Matches(a Approver) bool {
	switch {
	case a.UserID == 0:
		return false
	case a.Admin:
		return true
	case r.UserID != 0:
		return r.UserID == a.UserID
	case r.GroupID != 0:
		return slices.Contains(a.GroupIDs, r.GroupID)
	default:
		return r.AccessLevel.Valid() && a.Level >= r.AccessLevel
	}
}

// RoleDescription is how GitLab names the roles an access-level rule admits.
func RoleDescription(l AccessLevel) string {
	switch l {
	case Maintainer:
		return "Maintainers"
	case Developer:
		return "Developers + Maintainers"
	case Reporter:
		return "Reporters + Developers + Maintainers"
	case Owner:
		return "Owners"
	case Guest:
		return "Guests + Reporters + Developers + Maintainers"
	}
	return ""
}

// RuleSummary is the state of one approval rule for one deployment.
type RuleSummary struct {
	ApprovalRule
	Approvals            []Approval // this deployment's approvals under the rule
	ApprovedCount        int
	PendingApprovalCount int
	Status               SummaryStatus
	CanApprove           bool // the caller may approve under this rule
}

// ApprovalSummary is the state of all of a deployment's approval rules.
type ApprovalSummary struct {
	Status SummaryStatus
	Rules  []RuleSummary
}

// Summarize computes a deployment's approval state from its environment's
// rules and its approvals; caller, when not nil, decides CanApprove.
func Summarize(rules []ApprovalRule, approvals []Approval, caller *Approver) ApprovalSummary {
	sum := ApprovalSummary{Status: SummaryApproved, Rules: make([]RuleSummary, 0, len(rules))}
	anyPending := false
	for _, r := range rules {
		rs := RuleSummary{ApprovalRule: r, Approvals: []Approval{}, Status: SummaryPendingApproval}
		rejected := false
		for _, a := range approvals {
			if a.RuleKey != r.Key() {
				continue
			}
			rs.Approvals = append(rs.Approvals, a)
			if a.Status == Approved {
				rs.ApprovedCount++
			} else {
				rejected = true
			}
		}
		rs.PendingApprovalCount = max(r.RequiredApprovals-rs.ApprovedCount, 0)
		switch {
		case rejected:
			rs.Status = SummaryRejected
			sum.Status = SummaryRejected
		case rs.PendingApprovalCount == 0:
			rs.Status = SummaryApproved
		default:
			anyPending = true
		}
		rs.CanApprove = caller != nil && r.Matches(*caller)
		sum.Rules = append(sum.Rules, rs)
	}
	if anyPending && sum.Status != SummaryRejected {
		sum.Status = SummaryPendingApproval
	}
	return sum
}

// PendingApprovalCount is how many more approvals the rules need:
// Σ max(required − approvals under the rule, 0). Rejections do not count.
func PendingApprovalCount(rules []ApprovalRule, approvals []Approval) int {
	n := 0
	for _, rs := range Summarize(rules, approvals, nil).Rules {
		n += rs.PendingApprovalCount
	}
	return n
}

// pickRule chooses, among the rules that match an approver, the one an
// approval counts for (SPEC 6.4): the first whose description contains
// representedAs, case-insensitively, or the first when representedAs is
// blank. A description equal to representedAs wins over one merely
// containing it, so that "Maintainers" can pick the MAINTAINER rule after a
// DEVELOPER rule ("Developers + Maintainers"). ok is false when
// representedAs names none of them; descs are their descriptions then.
func pickRule(matching []ApprovalRule, representedAs string, describe func(Rule) (string, error)) (rule ApprovalRule, descs []string, ok bool, err error) {
	if len(matching) == 0 {
		return ApprovalRule{}, nil, false, nil
	}
	want := strings.ToLower(strings.TrimSpace(representedAs))
	if want == "" {
		return matching[0], nil, true, nil
	}
	descs = make([]string, len(matching))
	for i, r := range matching {
		if descs[i], err = describe(r.Rule); err != nil {
			return ApprovalRule{}, nil, false, err
		}
	}
	for i, d := range descs {
		if strings.ToLower(d) == want {
			return matching[i], descs, true, nil
		}
	}
	for i, d := range descs {
		if strings.Contains(strings.ToLower(d), want) {
			return matching[i], descs, true, nil
		}
	}
	return ApprovalRule{}, descs, false, nil
}
