package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The deployment index holds, for each deployment and for each of its two
// scopes (its project and its environment), one key per ordering:
//
//	scope(9) | order tag | sort key
//
// where the sort key is the ordered value followed by the id (the id breaks
// ties and makes every key unique). ID and FINISHED_AT order are kept
// partitioned by status, so that the common "one status, newest first" and
// "last successful deployment" pages read only what they return:
//
//	scope | 'S' | status | id            (ID order within one status)
//	scope | 'F' | status | finished | id (FINISHED_AT order within one status)
//
// A page of those two orders is a merge of the partitions of the statuses
// it asks for (all of them without a status filter; see mergedSource), and
// a page of any other order is a range scan of its prefix; filters the key
// cannot answer are checked on the record. Each deployment has 12 keys:
// every one is written by the commit that records the deployment, and
// each ordering costs that commit a leaf and a branch page.

// DeploymentOrder is the field a deployment list is sorted by.
type DeploymentOrder byte

// Deployment orders; the value is the order's tag in index keys and cursors.
const (
	OrderByID         DeploymentOrder = 'i'
	OrderByIID        DeploymentOrder = 'n'
	OrderByCreatedAt  DeploymentOrder = 'c'
	OrderByUpdatedAt  DeploymentOrder = 'u'
	OrderByFinishedAt DeploymentOrder = 'f'
	OrderByRef        DeploymentOrder = 'r'
)

var deploymentOrders = [...]DeploymentOrder{
	OrderByID, OrderByIID, OrderByCreatedAt, OrderByUpdatedAt, OrderByFinishedAt, OrderByRef,
}

// scannedOrders have a prefix of their own; the others are read from the
// status partitions.
var scannedOrders = [...]DeploymentOrder{OrderByIID, OrderByCreatedAt, OrderByUpdatedAt, OrderByRef}

const (
	tagByStatus         = 'S'
	tagByStatusFinished = 'F'
)

// scopeLen is the length of a scope: its kind ('p' or 'e') and id.
const scopeLen = 1 + 8

func projectScope(id int64) []byte { return join([]byte{'p'}, u64(id)) }
func envScope(id int64) []byte     { return appendEnvScope(make([]byte, 0, scopeLen), id) }

// appendEnvScope appends envScope(id) to dst.
func appendEnvScope(dst []byte, id int64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 'e'), uint64(id))
}

// sortKey is d's position in order o.
func (d *Deployment) sortKey(o DeploymentOrder) []byte { return d.appendSortKey(nil, o) }

// appendSortKey appends d's position in order o to dst.
func (d *Deployment) appendSortKey(dst []byte, o DeploymentOrder) []byte {
	switch o {
	case OrderByIID:
		dst = binary.BigEndian.AppendUint64(dst, uint64(d.IID))
	case OrderByCreatedAt:
		dst = appendTimeKey(dst, &d.CreatedAt)
	case OrderByUpdatedAt:
		dst = appendTimeKey(dst, &d.UpdatedAt)
	case OrderByFinishedAt:
		dst = appendTimeKey(dst, d.FinishedAt)
	case OrderByRef:
		dst = append(append(dst, d.Ref...), 0)
	}
	return binary.BigEndian.AppendUint64(dst, uint64(d.ID))
}

// statusPartitions is ID order (tag 'S') or FINISHED_AT order (tag 'F') of
// the deployments of scope with one of statuses, read from their partitions.
func statusPartitions(idx *bolt.Bucket, scope []byte, tag byte, statuses []DeploymentStatus, desc bool) source {
	parts := make(mergedSource, len(statuses))
	for i, st := range statuses {
		parts[i] = boltSource{b: idx, prefix: join(scope, []byte{tag, statusCode(st)}), desc: desc}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return parts
}

func statusCode(s DeploymentStatus) byte {
	for i, st := range AllDeploymentStatuses {
		if st == s {
			return byte(i + 1)
		}
	}
	return 0
}

// indexKeys lists every index key of d. They share one allocation: a
// deployment's write puts all of them, inside the commit every other
// write waits for.
func (d *Deployment) indexKeys() [][]byte {
	const perScope = len(scannedOrders) + 2
	// scope(9) | tag | status | the longest sort key (ref, 0, id, or time, id)
	longest := scopeLen + 2 + max(16, len(d.Ref)+9)
	buf := make([]byte, 0, 2*perScope*longest)
	var ends [2 * perScope]int
	n := 0
	end := func() { ends[n] = len(buf); n++ }
	st := statusCode(d.Status)
	for _, scope := range [...][]byte{projectScope(d.ProjectID), envScope(d.EnvironmentID)} {
		for _, o := range scannedOrders {
			buf = d.appendSortKey(append(append(buf, scope...), byte(o)), o)
			end()
		}
		buf = d.appendSortKey(append(append(buf, scope...), tagByStatus, st), OrderByID)
		end()
		buf = d.appendSortKey(append(append(buf, scope...), tagByStatusFinished, st), OrderByFinishedAt)
		end()
	}
	keys := make([][]byte, len(ends))
	start := 0
	for i, e := range ends {
		keys[i] = buf[start:e:e]
		start = e
	}
	return keys
}

func countKey(scope []byte, s DeploymentStatus) []byte {
	return join(scope, []byte{statusCode(s)})
}

func addCount(b *bolt.Bucket, key []byte, delta int64) error {
	var n int64
	if v := b.Get(key); v != nil {
		n = int64(binary.BigEndian.Uint64(v))
	}
	n += delta
	if n < 0 {
		return fmt.Errorf("deployment counter %x below zero", key)
	}
	return b.Put(key, u64(n))
}

// putDeployment writes d and keeps its indexes and counters in step with the
// previous version of the record, if any.
func putDeployment(tx *bolt.Tx, d *Deployment) error {
	if statusCode(d.Status) == 0 {
		// ID and FINISHED_AT lists read the status partitions: a
		// deployment in none of them would be missing from them.
		return fmt.Errorf("deployment %d: unknown status %q", d.ID, d.Status)
	}
	old, err := getByID[Deployment](tx, bktDeployments, d.ID)
	if err != nil {
		return err
	}
	if old != nil {
		if err := unindexDeployment(tx, old); err != nil {
			return err
		}
	}
	if err := putRecord(tx, bktDeployments, d.ID, d); err != nil {
		return err
	}
	idx := tx.Bucket(bktDeployIndex)
	for _, k := range d.indexKeys() {
		if err := idx.Put(k, nil); err != nil {
			return err
		}
	}
	counts := tx.Bucket(bktDeployCounts)
	for _, scope := range [][]byte{projectScope(d.ProjectID), envScope(d.EnvironmentID)} {
		if err := addCount(counts, countKey(scope, d.Status), 1); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bktDeployByIID).Put(pair(d.ProjectID, d.IID), u64(d.ID)); err != nil {
		return err
	}
	if err := raiseCounter(tx, deployIIDCounter(d.ProjectID), d.IID); err != nil {
		return err
	}
	return bumpSequence(tx.Bucket(bktDeployments), d.ID)
}

func unindexDeployment(tx *bolt.Tx, d *Deployment) error {
	idx := tx.Bucket(bktDeployIndex)
	for _, k := range d.indexKeys() {
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	counts := tx.Bucket(bktDeployCounts)
	for _, scope := range [][]byte{projectScope(d.ProjectID), envScope(d.EnvironmentID)} {
		if err := addCount(counts, countKey(scope, d.Status), -1); err != nil {
			return err
		}
	}
	return deleteOwnKey(tx.Bucket(bktDeployByIID), pair(d.ProjectID, d.IID), d.ID)
}

// deleteDeploymentRecord removes d, its indexes, approvals and merge
// request links.
func deleteDeploymentRecord(tx *bolt.Tx, d *Deployment) error {
	if err := unindexDeployment(tx, d); err != nil {
		return err
	}
	if err := deletePrefix(tx.Bucket(bktApprovals), u64(d.ID)); err != nil {
		return err
	}
	links := tx.Bucket(bktDeployMRs)
	var mrIDs []int64
	c := links.Cursor()
	for k, _ := c.Seek(u64(d.ID)); k != nil && readU64(k) == d.ID; k, _ = c.Next() {
		mrIDs = append(mrIDs, lastID(k))
	}
	for _, mr := range mrIDs {
		if err := links.Delete(pair(d.ID, mr)); err != nil {
			return err
		}
		if err := tx.Bucket(bktMRDeploys).Delete(pair(mr, d.ID)); err != nil {
			return err
		}
	}
	return tx.Bucket(bktDeployments).Delete(u64(d.ID))
}

// deletePrefix removes every key of b that starts with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func hasPrefix(k, p []byte) bool { return len(k) >= len(p) && string(k[:len(p)]) == string(p) }

// The layout of a store's deployment index is marked in its meta bucket.
// Layout 1 (no mark) also kept ID and FINISHED_AT order under prefixes of
// their own, tagged 'i' and 'f'; layout 2 reads both from the status
// partitions and has no such keys.
var keyIndexLayout = []byte("deployment-index-layout")

const indexLayout = 2

// layoutChunk bounds the keys one migration transaction removes, so that
// none holds millions of changes in memory.
var layoutChunk = 50_000

// migrateDeploymentIndex brings a store's index to indexLayout: it removes
// layout 1's 'i' and 'f' keys, a chunk per transaction, and then marks the
// layout. A migration cut short goes on at the next open; until then the
// keys left over are only never read.
func migrateDeploymentIndex(db *bolt.DB) error {
	// Most opens find the mark: a read, not a commit and its syncs.
	done := false
	if err := db.View(func(tx *bolt.Tx) error {
		done = tx.Bucket(bktMeta).Get(keyIndexLayout) != nil
		return nil
	}); err != nil {
		return fmt.Errorf("migrate the deployment index: %w", err)
	}
	for !done {
		err := db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bktMeta)
			idx := tx.Bucket(bktDeployIndex)
			stale := layoutOneKeys(idx, layoutChunk)
			for _, k := range stale {
				if err := idx.Delete(k); err != nil {
					return err
				}
			}
			if len(stale) == layoutChunk {
				return nil
			}
			done = true
			return meta.Put(keyIndexLayout, u64(indexLayout))
		})
		if err != nil {
			return fmt.Errorf("migrate the deployment index: %w", err)
		}
	}
	return nil
}

// layoutOneKeys lists up to limit keys of idx tagged 'i' or 'f' after their
// scope.
func layoutOneKeys(idx *bolt.Bucket, limit int) [][]byte {
	var out [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil && len(out) < limit; {
		scope := append([]byte(nil), k[:min(len(k), scopeLen)]...)
		for _, tag := range []byte{byte(OrderByID), byte(OrderByFinishedAt)} {
			prefix := join(scope, []byte{tag})
			for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
				out = append(out, append([]byte(nil), k...))
			}
		}
		end := prefixEnd(scope)
		if end == nil {
			break
		}
		k, _ = c.Seek(end)
	}
	return out
}
