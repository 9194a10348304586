package store

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// The index keys are stored: a change to their layout would make every
// existing store's pages and counts wrong. The expected keys are written out
// byte by byte from the layout described on top of deployindex.go.
func TestDeploymentIndexKeysKeepTheirLayout(t *testing.T) {
	created := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
	updated := created.Add(time.Minute)
	finished := created.Add(2 * time.Minute)
	// timeKey: microseconds since the epoch with the sign bit flipped.
	timeHex := func(ts time.Time) string {
		var b [8]byte
		u := uint64(ts.UnixMicro()) ^ (1 << 63)
		for i := 7; i >= 0; i-- {
			b[i] = byte(u)
			u >>= 8
		}
		return hex.EncodeToString(b[:])
	}
	const (
		project = "70000000000000000c" // 'p' | 12
		env     = "650000000000000022" // 'e' | 34
		id      = "00000000000001c8"   // 456
		iid     = "0000000000000007"   // 7
		success = "03"                 // the third of AllDeploymentStatuses
	)
	tests := []struct {
		name     string
		ref      string
		finished *time.Time
		status   DeploymentStatus
		want     func(scope string) []string // one scope's keys, in indexKeys' order
	}{{
		name: "finished", ref: "main", finished: &finished, status: StatusSuccess,
		want: func(scope string) []string {
			return []string{
				scope + "6e" + iid + id,
				scope + "63" + timeHex(created) + id,
				scope + "75" + timeHex(updated) + id,
				scope + "72" + hex.EncodeToString([]byte("main")) + "00" + id,
				scope + "53" + success + id,
				scope + "46" + success + timeHex(finished) + id,
			}
		},
	}, {
		name: "running, a long ref", ref: strings.Repeat("r", 300), status: StatusRunning,
		want: func(scope string) []string {
			unfinished := "ffffffffffffffff"
			return []string{
				scope + "6e" + iid + id,
				scope + "63" + timeHex(created) + id,
				scope + "75" + timeHex(updated) + id,
				scope + "72" + hex.EncodeToString([]byte(strings.Repeat("r", 300))) + "00" + id,
				scope + "53" + "02" + id,
				scope + "46" + "02" + unfinished + id,
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Deployment{
				ID: 456, IID: 7, ProjectID: 12, EnvironmentID: 34, Ref: tt.ref, Status: tt.status,
				CreatedAt: created, UpdatedAt: updated, FinishedAt: tt.finished,
			}
			want := append(tt.want(project), tt.want(env)...)
			got := d.indexKeys()
			if len(got) != len(want) {
				t.Fatalf("%d keys, want %d", len(got), len(want))
			}
			for i := range want {
				if hex.EncodeToString(got[i]) != want[i] {
					t.Errorf("key %d:\n got %x\nwant %s", i, got[i], want[i])
				}
			}
			// Keys share a buffer: appending to one must not write into the next.
			next := bytes.Clone(got[1])
			_ = append(got[0], 0xee)
			if !bytes.Equal(got[1], next) {
				t.Error("appending to one key changed the next")
			}
			for _, o := range scannedOrders {
				if key := got[bytes.IndexByte([]byte("ncur"), byte(o))]; !bytes.HasSuffix(key, d.sortKey(o)) {
					t.Errorf("order %c: key %x does not end with its sort key %x", o, key, d.sortKey(o))
				}
			}
		})
	}
}
