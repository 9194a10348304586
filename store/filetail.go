package store

import (
	"fmt"
	"os"
)

// fileTail keeps the stretch of the file just past its data written, with
// zeros, before bbolt places pages there. bbolt grows its file by
// truncating it longer, which leaves a hole; a commit whose pages land in
// the hole makes the filesystem allocate blocks, and its data sync then
// commits the filesystem's journal as well as the pages (on ext4 here,
// write commits' data syncs took up to a fifth longer for it). Pages
// written over zeros are flushed on their own.
//
// bbolt writes pages, and grows the file, only while it commits, and never
// at or past the high-water mark of the transaction that holds its writer
// lock until that transaction commits: so zeros written there, by that
// transaction's holder, cannot overwrite data.
type fileTail struct {
	f *os.File
	// written is how far the file is known to be written (data or zeros).
	written int64
}

const (
	tailAhead  = 2 << 20 // zeros written past the data at each refill
	tailRefill = 1 << 20 // refill when fewer than this remain
)

// zeros is what a refill writes, a piece at a time.
var zeros [64 << 10]byte

func openFileTail(path string) (*fileTail, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s for its tail: %w", path, err)
	}
	return &fileTail{f: f}, nil
}

// refill makes sure at least tailRefill bytes past end, the high-water
// mark of a write transaction, are written. IMPORTANT: only the holder of
// bbolt's writer lock may call it, for the transaction it holds, before
// that transaction commits. A refill that fails is given up: it only ever
// saves time, and the commit grows the file as bbolt always does.
func (t *fileTail) refill(end int64) {
	if t.written-end >= tailRefill {
		return
	}
	off := max(t.written, end)
	for stop := end + tailAhead; off < stop; {
		n, err := t.f.WriteAt(zeros[:min(int64(len(zeros)), stop-off)], off)
		off += int64(n)
		if err != nil {
			break
		}
	}
	t.written = max(t.written, off)
}

func (t *fileTail) close() error { return t.f.Close() }
