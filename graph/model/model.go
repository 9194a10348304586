// Package model holds the GraphQL types that are not domain types: the Time
// scalar, the Node interface, and Relay connections.
package model

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/deploygraph/deploygraph/store"
)

// Node is any object with a global ID; resolvers return store records.
type Node any

// GIDPrefix begins every global ID: gid://deploygraph/Deployment/42.
const GIDPrefix = "gid://deploygraph/"

// MarshalGlobalID writes an object's number as its global ID, named after
// the GraphQL type of the object being written. Every type's id is thereby
// a plain field, written with its object rather than by a resolver of its
// own (which would cost a goroutine per object).
func MarshalGlobalID(id int64) graphql.ContextMarshaler {
	return graphql.ContextWriterFunc(func(ctx context.Context, w io.Writer) error {
		fc := graphql.GetFieldContext(ctx)
		if fc == nil || fc.Object == "" {
			return fmt.Errorf("global ID %d written outside an object", id)
		}
		WriteGlobalID(w, fc.Object, id)
		return nil
	})
}

// WriteGlobalID writes id as the global ID of an object of the GraphQL
// type typeName.
func WriteGlobalID(w io.Writer, typeName string, id int64) {
	// A type's name is letters, digits and underscores: nothing in the ID
	// needs escaping in JSON.
	appendTo(w, func(b []byte) []byte {
		b = append(append(append(b, '"'), GIDPrefix...), typeName...)
		return append(strconv.AppendInt(append(b, '/'), id, 10), '"')
	})
}

// UnmarshalGlobalID reads a global ID or a bare number. Arguments and
// input fields take references as strings and parse them themselves (a
// reference also names its type); this only completes the scalar.
func UnmarshalGlobalID(ctx context.Context, v any) (int64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, store.Errorf(store.EInvalid, "an ID must be a string, got %v", v)
	}
	num := s
	if rest, ok := strings.CutPrefix(s, GIDPrefix); ok {
		_, num, _ = strings.Cut(rest, "/")
	}
	id, err := strconv.ParseInt(num, 10, 64)
	if err != nil || id <= 0 {
		return 0, store.Errorf(store.EInvalid, "%q is not a valid global ID (gid://deploygraph/<Type>/<number>)", s)
	}
	return id, nil
}

// TimeFormat is how every time leaves the API: UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MarshalTime writes t in TimeFormat.
func MarshalTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { writeTime(w, t) })
}

// writeTime writes t as MarshalTime does. TimeFormat writes nothing a JSON
// string must escape, so quotes around it are the whole quoting.
func writeTime(w io.Writer, t time.Time) {
	appendTo(w, func(b []byte) []byte {
		return append(t.UTC().AppendFormat(append(b, '"'), TimeFormat), '"')
	})
}

// inputTimeLayouts are the RFC 3339 / ISO 8601 forms accepted in arguments;
// a time without a zone is UTC.
var inputTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02",
}

// UnmarshalTime parses a Time argument.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, store.Errorf(store.EInvalid, "Time must be a string in ISO 8601 format, got %v", v)
	}
	for _, layout := range inputTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, store.Errorf(store.EInvalid, "%q is not a valid ISO 8601 time (e.g. 2019-03-15T08:00:00Z)", s)
}

// PageInfo tells a client where a page sits in its list.
type PageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}

// Paging is what every connection has besides its nodes: the page's place
// in the list and the list's size, counted only when asked for.
type Paging struct {
	PageInfo *PageInfo
	count    func(context.Context) (int, error)
}

// Count is the number of items matching the filters, whatever the page.
func (p *Paging) Count(ctx context.Context) (int, error) {
	if p.count == nil {
		return 0, fmt.Errorf("connection without a count")
	}
	return p.count(ctx)
}

func newPaging[T any](page store.Page[T], count func(context.Context) (int, error)) Paging {
	info := &PageInfo{HasNextPage: page.HasNextPage, HasPreviousPage: page.HasPreviousPage}
	if n := len(page.Cursors); n > 0 {
		info.StartCursor, info.EndCursor = &page.Cursors[0], &page.Cursors[n-1]
	}
	return Paging{PageInfo: info, count: count}
}

// edges pairs each item of a page with its cursor, the edges in one slice
// that their pointers share.
func edges[T, E any](page store.Page[T], edge func(cursor string, node T) E) []*E {
	out, each := make([]*E, len(page.Items)), make([]E, len(page.Items))
	for i, item := range page.Items {
		each[i] = edge(page.Cursors[i], item)
		out[i] = &each[i]
	}
	return out
}

// ProjectConnection is a page of projects.
type ProjectConnection struct {
	Paging
	Nodes []*store.Project
	Edges []*ProjectEdge
}

// ProjectEdge is a project with its cursor.
type ProjectEdge struct {
	Cursor string
	Node   *store.Project
}

// NewProjectConnection wraps a page of projects.
func NewProjectConnection(page store.Page[*store.Project], count func(context.Context) (int, error)) *ProjectConnection {
	return &ProjectConnection{Paging: newPaging(page, count), Nodes: nonNil(page.Items),
		Edges: edges(page, func(c string, n *store.Project) ProjectEdge { return ProjectEdge{c, n} })}
}

// EnvironmentConnection is a page of environments.
type EnvironmentConnection struct {
	Paging
	Nodes []*store.Environment
	Edges []*EnvironmentEdge
}

// EnvironmentEdge is an environment with its cursor.
type EnvironmentEdge struct {
	Cursor string
	Node   *store.Environment
}

// NewEnvironmentConnection wraps a page of environments.
func NewEnvironmentConnection(page store.Page[*store.Environment], count func(context.Context) (int, error)) *EnvironmentConnection {
	return &EnvironmentConnection{Paging: newPaging(page, count), Nodes: nonNil(page.Items),
		Edges: edges(page, func(c string, n *store.Environment) EnvironmentEdge { return EnvironmentEdge{c, n} })}
}

// DeploymentConnection is a page of deployments.
type DeploymentConnection struct {
	Paging
	Nodes []*store.Deployment
	Edges []*DeploymentEdge
}

// DeploymentEdge is a deployment with its cursor.
type DeploymentEdge struct {
	Cursor string
	Node   *store.Deployment
}

// NewDeploymentConnection wraps a page of deployments.
func NewDeploymentConnection(page store.Page[*store.Deployment], count func(context.Context) (int, error)) *DeploymentConnection {
	return &DeploymentConnection{Paging: newPaging(page, count), Nodes: nonNil(page.Items),
		Edges: edges(page, func(c string, n *store.Deployment) DeploymentEdge { return DeploymentEdge{c, n} })}
}

// MergeRequestConnection is a page of merge requests.
type MergeRequestConnection struct {
	Paging
	Nodes []*store.MergeRequest
	Edges []*MergeRequestEdge
}

// MergeRequestEdge is a merge request with its cursor.
type MergeRequestEdge struct {
	Cursor string
	Node   *store.MergeRequest
}

// NewMergeRequestConnection wraps a page of merge requests.
func NewMergeRequestConnection(page store.Page[*store.MergeRequest], count func(context.Context) (int, error)) *MergeRequestConnection {
	return &MergeRequestConnection{Paging: newPaging(page, count), Nodes: nonNil(page.Items),
		Edges: edges(page, func(c string, n *store.MergeRequest) MergeRequestEdge { return MergeRequestEdge{c, n} })}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
