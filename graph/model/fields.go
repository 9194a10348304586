package model

import (
	"bytes"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// The marshalers below write a field of the object being written through
// a pointer to it. Held in an interface, as a response holds every value
// until it is written, a pointer takes no allocation, where a string, a
// number or a time (or gqlgen's closure over one) takes one each. Objects
// are not changed once loaded, so the field still holds its value when the
// response is written, after all of its fields are resolved. Each writes
// exactly what gqlgen's marshaler of the same type writes; a nil pointer
// is null.

// StringAt writes the string at p.
func StringAt(p *string) graphql.Marshaler { return pointTo((*stringAt)(p)) }

// Int64At writes the number at p.
func Int64At(p *int64) graphql.Marshaler { return pointTo((*int64At)(p)) }

// IntAt writes the number at p.
func IntAt(p *int) graphql.Marshaler { return pointTo((*intAt)(p)) }

// FloatAt writes the number at p.
func FloatAt(p *float64) graphql.Marshaler { return pointTo((*floatAt)(p)) }

// BoolAt writes the boolean at p.
func BoolAt(p *bool) graphql.Marshaler { return pointTo((*boolAt)(p)) }

// TimeAt writes the time at p as MarshalTime does.
func TimeAt(p *time.Time) graphql.Marshaler { return pointTo((*timeAt)(p)) }

// pointTo is p as a marshaler, or graphql.Null (which the objects' null
// checks compare with) when p is nil.
func pointTo[T any, P interface {
	*T
	graphql.Marshaler
}](p P) graphql.Marshaler {
	if p == nil {
		return graphql.Null
	}
	return p
}

// Names boxes the GraphQL names of an enum's values once, for NameOf.
func Names[E comparable](names map[E]string) map[E]graphql.Marshaler {
	boxed := make(map[E]graphql.Marshaler, len(names))
	for v, name := range names {
		boxed[v] = StringAt(&name)
	}
	return boxed
}

// NameOf writes the GraphQL name of v, boxed by Names. A value without one
// is written as gqlgen writes it: an empty string.
func NameOf[E comparable](names map[E]graphql.Marshaler, v E) graphql.Marshaler {
	if m, ok := names[v]; ok {
		return m
	}
	return graphql.MarshalString("")
}

type (
	stringAt string
	int64At  int64
	intAt    int
	floatAt  float64
	boolAt   bool
	timeAt   time.Time
)

func (p *stringAt) MarshalGQL(w io.Writer) { writeQuoted(w, string(*p)) }

func (p *int64At) MarshalGQL(w io.Writer) { writeInt(w, int64(*p)) }

func (p *intAt) MarshalGQL(w io.Writer) { writeInt(w, int64(*p)) }

// MarshalGQL writes the number as gqlgen's MarshalFloat does (%g), and
// null for NaN or an infinity, which JSON has no number for (gqlgen's
// MarshalFloatContext refuses them with an error).
func (p *floatAt) MarshalGQL(w io.Writer) {
	f := float64(*p)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		io.WriteString(w, "null")
		return
	}
	appendTo(w, func(b []byte) []byte { return strconv.AppendFloat(b, f, 'g', -1, 64) })
}

func (p *boolAt) MarshalGQL(w io.Writer) {
	if *p {
		io.WriteString(w, "true")
	} else {
		io.WriteString(w, "false")
	}
}

func (p *timeAt) MarshalGQL(w io.Writer) { writeTime(w, time.Time(*p)) }

// appendTo writes what add appends to the slice it is given: the spare
// room of a bytes.Buffer, which gqlgen's executor writes responses into,
// so that nothing is allocated (a slice of a local array passed to an
// io.Writer would be moved to the heap).
func appendTo(w io.Writer, add func([]byte) []byte) {
	if buf, ok := w.(*bytes.Buffer); ok {
		buf.Write(add(buf.AvailableBuffer()))
		return
	}
	w.Write(add(nil))
}

func writeInt(w io.Writer, n int64) {
	appendTo(w, func(b []byte) []byte { return strconv.AppendInt(b, n, 10) })
}

// writeQuoted writes s as a JSON string exactly as gqlgen's MarshalString
// does: control characters, '\\' and '"' escaped, everything else (bytes
// that are not UTF-8 too) as it is. The bytes of a multi-byte character
// are all 0x80 or above, so a search byte by byte finds the same ones.
func writeQuoted(w io.Writer, s string) {
	buf, ok := w.(*bytes.Buffer)
	if !ok {
		graphql.MarshalString(s).MarshalGQL(w)
		return
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '\\' || c == '"' {
			graphql.MarshalString(s).MarshalGQL(w)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}
