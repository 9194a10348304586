package graph

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/deploygraph/deploygraph/store"
)

// backupTimeFormat names a backup after the moment it was taken, in UTC.
const backupTimeFormat = "20060102T150405Z"

// NewBackupHandler serves a consistent copy of the store's file to
// administrators (GET /admin/backup) while the server goes on serving; HEAD
// answers its headers without copying.
// Tokens are read as for GraphQL: anonymous is refused with 401
// UNAUTHENTICATED, anyone but an administrator with 403 FORBIDDEN.
func NewBackupHandler(s *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		viewer, err := viewerOf(s, r)
		if err != nil {
			writeRefusal(w, r, err)
			return
		}
		name := "deploygraph-" + s.Now().Format(backupTimeFormat) + ".db"
		started := false
		start := func(size int64) {
			h := w.Header()
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Disposition", "attachment; filename="+name)
			h.Set("Content-Length", strconv.FormatInt(size, 10))
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if r.Method == http.MethodHead {
			// The headers only: a HEAD must not cost a copy of the store.
			size, err := s.BackupSize(r.Context(), viewer)
			if err != nil {
				writeRefusal(w, r, err)
				return
			}
			start(size)
			return
		}
		_, err = s.Backup(r.Context(), viewer, w, start)
		switch {
		case err == nil:
		case !started:
			writeRefusal(w, r, err)
		default:
			slog.ErrorContext(r.Context(), "backup cut short", "error", err.Error())
			// Break the connection: a client must not take a cut-short
			// copy for a whole one.
			panic(http.ErrAbortHandler)
		}
	})
}
