package graph

import (
	"reflect"
	"testing"
)

// The handler's ResolverRoot hands out its resolvers without allocating:
// the generated code asks for one for every resolved field.
func TestResolverRootDoesNotAllocate(t *testing.T) {
	var root ResolverRoot = newResolverRoot(&Resolver{})
	v := reflect.ValueOf(root)
	for i := range v.NumMethod() {
		name := v.Type().Method(i).Name
		get := v.Method(i)
		first := get.Call(nil)[0].Interface()
		again := get.Call(nil)[0].Interface()
		if first != again {
			t.Errorf("%s: a new resolver on each call", name)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		root.Deployment()
		root.Job()
		root.DeploymentApproval()
		root.MergeRequest()
		root.Environment()
		root.Project()
	}); n != 0 {
		t.Errorf("%v allocations for the resolvers of a page's fields, want none", n)
	}
}
