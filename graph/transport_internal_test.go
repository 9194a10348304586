package graph

import (
	"bytes"
	stdjson "encoding/json"
	"reflect"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

func isNull(raw stdjson.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// referenceParams reads a request body as the standard library would: the
// request decoder must agree with it on every body, accepted or not.
func referenceParams(body []byte) (*graphql.RawParams, bool) {
	var raw struct {
		Query, OperationName, Variables, Extensions stdjson.RawMessage
	}
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) || stdjson.Unmarshal(body, &raw) != nil {
		return nil, false
	}
	out := &graphql.RawParams{}
	str := func(m stdjson.RawMessage, s *string) bool {
		return isNull(m) || stdjson.Unmarshal(m, s) == nil
	}
	obj := func(m stdjson.RawMessage, o *map[string]any) bool {
		if isNull(m) {
			return true
		}
		m = bytes.TrimSpace(m)
		if !bytes.HasPrefix(m, []byte("{")) {
			return false
		}
		dec := stdjson.NewDecoder(bytes.NewReader(m))
		dec.UseNumber()
		return dec.Decode(o) == nil && !dec.More()
	}
	if !str(raw.Query, &out.Query) || !str(raw.OperationName, &out.OperationName) ||
		!obj(raw.Variables, &out.Variables) || !obj(raw.Extensions, &out.Extensions) {
		return nil, false
	}
	return out, true
}

func FuzzRequestBody(f *testing.F) {
	for _, seed := range []string{
		`{"query":"{ projects { nodes { id } } }"}`,
		`{"query":"query($n: Int) { x }","variables":{"n":12345678901234567890,"s":"\u00e9\ud83d\ude00","l":[1,2.5e3,null,true]},"operationName":null}`,
		`{"query":"{x}","extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}`,
		`{"query":"query($i: In!) { x }","variables":{"i":{"a":[{"b":[1,{"c":"d"}]}],"e":null}}}`,
		`{"query":"{x}","query":"{y}"}`,
		`{"QUERY":"{x}"}`,
		`{"query":"\xff\xfe"}`,
		`{"query":1}`,
		`{"query":"{x}","variables":[]}`,
		`{"query":"{x}","variables":"{}"}`,
		`{"query":"{x}"} trailing`,
		`[{"query":"{x}"}]`,
		` {"query":"{x}" `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, wantOK := referenceParams(body)
		// The second time, a body that was kept is answered from
		// keptBodies; what the first caller did to its values must not
		// show.
		for try := range 2 {
			var got graphql.RawParams
			p, err := paramsFromBody(bytes.NewReader(body))
			if err == nil {
				err = p.decode(&got)
			}
			if gotOK := err == nil; gotOK != wantOK {
				t.Fatalf("body %q, try %d: accepted %v (%v), the standard library %v", body, try, gotOK, err, wantOK)
			}
			if wantOK && !reflect.DeepEqual(&got, want) {
				t.Fatalf("body %q, try %d:\n got %#v\nwant %#v", body, try, got, *want)
			}
			scribble(got.Variables)
			scribble(got.Extensions)
		}
	})
}

// scribble changes every object and array in v, as a careless caller
// might.
func scribble(v any) {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return
		}
		for k, e := range v {
			scribble(e)
			v[k] = "changed"
		}
		v["added"] = true
	case []any:
		for i, e := range v {
			scribble(e)
			v[i] = "changed"
		}
	}
}

// writeResponse writes exactly what encoding/json writes for a response.
func TestWriteResponseMatchesEncodingJSON(t *testing.T) {
	yes := true
	tests := []struct {
		name string
		resp graphql.Response
	}{
		{"data", graphql.Response{Data: []byte(`{"project":{"name":"a <b> & c","n":1.5e3,"l":[null,true,"\u2028"]}}`)}},
		{"data with nothing to escape", graphql.Response{Data: []byte(`{"project":{"name":"plain","l":[1,false,"x"]}}`)}},
		{"data with a paragraph separator", graphql.Response{Data: []byte("{\"n\":\"a\u2029b\"}")}},
		{"data with other characters of several bytes", graphql.Response{Data: []byte("{\"n\":\"é € 日本\"}")}},
		{"null data", graphql.Response{}},
		{"errors and data", graphql.Response{
			Data:   []byte(`{"deployment":null}`),
			Errors: gqlerror.List{{Message: "Not found <x>", Path: ast.Path{ast.PathName("deployment")}, Extensions: map[string]any{"code": "NOT_FOUND"}}},
		}},
		{"extensions", graphql.Response{Data: []byte(`{}`), Extensions: map[string]any{"cost": 3}}},
		{"incremental part", graphql.Response{Data: []byte(`{}`), Label: "l", HasNext: &yes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := stdjson.Marshal(&tt.resp)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			writeResponse(&got, &tt.resp)
			if got.String() != string(want) {
				t.Fatalf("got  %s\nwant %s", got.Bytes(), want)
			}
		})
	}
}
