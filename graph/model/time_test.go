package model_test

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/deploygraph/deploygraph/graph/model"
)

// FuzzUnmarshalTime checks Time parsing on any input: it never panics, a
// parsed time is in UTC, and printing it gives a Time that parses back to
// the same instant at millisecond precision.
func FuzzUnmarshalTime(f *testing.F) {
	for _, s := range []string{
		"2019-03-15T08:00:00Z", "2019-03-15T08:00:00.123456789+05:30", "2019-03-15T08:00:00",
		"2019-03-15", "2019-03-15T08:00:00+0100", "2019-02-30", "0000-01-01T00:00:00+01:00",
		"9999-12-31T23:59:59-23:59", "", "yesterday", "2019-03-15T25:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := model.UnmarshalTime(s)
		if err != nil {
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("UnmarshalTime(%q) = %v: want UTC", s, tm)
		}
		if tm.Year() < 0 || tm.Year() > 9999 {
			return // beyond the four-digit years of ISO 8601 once moved to UTC
		}
		var buf bytes.Buffer
		model.MarshalTime(tm).MarshalGQL(&buf)
		printed, err := strconv.Unquote(buf.String())
		if err != nil {
			t.Fatalf("MarshalTime(%v) = %s: not a JSON string", tm, buf.String())
		}
		back, err := model.UnmarshalTime(printed)
		if err != nil {
			t.Fatalf("UnmarshalTime(MarshalTime(%q) = %q): %v", s, printed, err)
		}
		if want := tm.Truncate(time.Millisecond); !back.Equal(want) {
			t.Fatalf("UnmarshalTime(%q) printed as %q parses to %v, want %v", s, printed, back, want)
		}
	})
}

// MarshalTime writes what quoting the formatted time would, for any year.
func TestMarshalTimeQuotesTheFormattedTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2019, 3, 15, 8, 0, 0, 123456789, time.FixedZone("", 5*3600+1800)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-44, 3, 15, 0, 0, 0, 0, time.UTC),
		time.Date(12345, 12, 31, 23, 59, 59, 999999999, time.UTC),
		{},
	} {
		var buf bytes.Buffer
		model.MarshalTime(tm).MarshalGQL(&buf)
		if want := strconv.Quote(tm.UTC().Format(model.TimeFormat)); buf.String() != want {
			t.Errorf("MarshalTime(%v) = %s, want %s", tm, buf.String(), want)
		}
	}
}
