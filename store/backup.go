package store

import (
	"context"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the store's file to w, as of one read
// transaction, while other reads and writes go on; only an administrator
// may take one. size, when not nil, learns the copy's length before its
// first byte is written (for a Content-Length, say), and n is the number of
// bytes written. The copy is a complete bbolt file: Open it, or put it in
// place of the store's file while the server is stopped, to restore.
//
// IMPORTANT: the read transaction stays open until w has taken every byte,
// so a slow w holds back the reuse of pages freed meanwhile, and a write
// that must grow the memory map waits for it.
func (s *Store) Backup(ctx context.Context, v Viewer, w io.Writer, size func(int64)) (n int64, err error) {
	if err := mayBackup(ctx, v); err != nil {
		return 0, err
	}
	err = s.view(func(tx *bolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupSize is the length a Backup taken now would have, for the same
// callers, without copying anything.
func (s *Store) BackupSize(ctx context.Context, v Viewer) (int64, error) {
	if err := mayBackup(ctx, v); err != nil {
		return 0, err
	}
	var size int64
	err := s.view(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	return size, err
}

// mayBackup is who may take a backup (an administrator), and whether the
// request still wants it.
func mayBackup(ctx context.Context, v Viewer) error {
	if err := requireAdmin(v); err != nil {
		return err
	}
	return ctx.Err()
}
