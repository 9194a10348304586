package model_test

import (
	"bytes"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/deploygraph/deploygraph/graph/model"
)

// onlyWriter hides the bytes.Buffer behind it, so the marshalers take
// their path for other writers.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// Every marshaler of a field by pointer writes exactly what gqlgen's
// marshaler of the same value writes, into a bytes.Buffer and into any
// other writer, after what the buffer already holds.
func TestFieldMarshalersWriteWhatGqlgenWrites(t *testing.T) {
	str := func(s string) *string { return &s }
	when := time.Date(2026, 12, 1, 22, 4, 5, 678_900_000, time.FixedZone("CET", 3600))
	i64, n, f, yes, no := int64(-9_007_199_254_740_993), 42, 1.5e-7, true, false
	tests := []struct {
		name      string
		got, want graphql.Marshaler
	}{
		{"plain string", model.StringAt(str("deploy to production")), graphql.MarshalString("deploy to production")},
		{"empty string", model.StringAt(str("")), graphql.MarshalString("")},
		{"quotes and backslashes", model.StringAt(str(`say "hi" \ bye`)), graphql.MarshalString(`say "hi" \ bye`)},
		{"control characters", model.StringAt(str("a\tb\nc\rd\x00e\x1f")), graphql.MarshalString("a\tb\nc\rd\x00e\x1f")},
		{"characters of several bytes", model.StringAt(str("é € 日本 \u2028 <>&")), graphql.MarshalString("é € 日本 \u2028 <>&")},
		{"bytes that are not UTF-8", model.StringAt(str("a\xff\xfe\"b")), graphql.MarshalString("a\xff\xfe\"b")},
		{"long string", model.StringAt(str(strings.Repeat("abc", 1000))), graphql.MarshalString(strings.Repeat("abc", 1000))},
		{"nil string", model.StringAt(nil), graphql.Null},
		{"int64", model.Int64At(&i64), graphql.MarshalInt64(i64)},
		{"int", model.IntAt(&n), graphql.MarshalInt(n)},
		{"nil int", model.IntAt(nil), graphql.Null},
		{"float", model.FloatAt(&f), graphql.MarshalFloat(f)},
		{"whole float", model.FloatAt(ptr(42.0)), graphql.MarshalFloat(42)},
		{"small float", model.FloatAt(ptr(1.5e-9)), graphql.MarshalFloat(1.5e-9)},
		{"large float", model.FloatAt(ptr(3e21)), graphql.MarshalFloat(3e21)},
		{"NaN", model.FloatAt(ptr(math.NaN())), graphql.Null},
		{"infinity", model.FloatAt(ptr(math.Inf(-1))), graphql.Null},
		{"nil float", model.FloatAt(nil), graphql.Null},
		{"true", model.BoolAt(&yes), graphql.MarshalBoolean(yes)},
		{"false", model.BoolAt(&no), graphql.MarshalBoolean(no)},
		{"time", model.TimeAt(&when), model.MarshalTime(when)},
		{"nil time", model.TimeAt(nil), graphql.Null},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			tt.want.MarshalGQL(&want)
			for _, into := range []string{"buffer", "writer"} {
				buf := bytes.NewBufferString("[")
				var w io.Writer = buf
				if into == "writer" {
					w = onlyWriter{buf}
				}
				tt.got.MarshalGQL(w)
				if got := buf.String(); got != "["+want.String() {
					t.Errorf("into a %s: got %s, want [%s", into, got, want.String())
				}
			}
		})
	}
	type status string
	names := map[status]string{"success": "SUCCESS", "failed": "FAILED"}
	boxed := model.Names(names)
	for _, v := range []status{"success", "failed", "unknown"} {
		var got, want bytes.Buffer
		model.NameOf(boxed, v).MarshalGQL(&got)
		graphql.MarshalString(names[v]).MarshalGQL(&want)
		if got.String() != want.String() {
			t.Errorf("NameOf(%q) wrote %s, want %s", v, got.String(), want.String())
		}
	}
	if model.StringAt(nil) != graphql.Null || model.TimeAt(nil) != graphql.Null {
		t.Error("a nil field is not graphql.Null, which the objects' null checks compare with")
	}
}

func ptr[T any](v T) *T { return &v }
