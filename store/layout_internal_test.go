package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A store of index layout 1 (keys tagged 'i' and 'f', no layout mark)
// opens as layout 2: those keys are removed, a chunk per transaction, the
// layout is marked, and every list reads as it did.
func TestOpenMigratesTheDeploymentIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deploygraph.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	putTestProject(t, s)
	const n = 120
	for i := range n {
		createDeployment(t, s, i, []string{"production", "staging"}[i%2], creatableStatuses[i%len(creatableStatuses)])
	}
	pageSize := 100
	var queries []DeploymentQuery
	for _, o := range deploymentOrders {
		for _, desc := range []bool{false, true} {
			for _, statuses := range [][]DeploymentStatus{nil, {StatusFailed, StatusCanceled}} {
				queries = append(queries, DeploymentQuery{ProjectID: 1, OrderBy: o, Desc: desc, Statuses: statuses, Page: PageArgs{First: &pageSize}})
			}
		}
	}
	lists := func(s *Store) []string {
		pages, errs := s.ListDeployments(context.Background(), queries)
		var out []string
		for i, p := range pages {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			var ids []int64
			for _, d := range p.Items {
				ids = append(ids, d.ID)
			}
			out = append(out, fmt.Sprint(ids))
		}
		return out
	}
	want := lists(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Back to layout 1: its two orderings' keys for each scope of each
	// deployment, and no mark.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var added, txBefore int
	err = db.Update(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bktDeployIndex)
		err := tx.Bucket(bktDeployments).ForEach(func(k, v []byte) error {
			var d Deployment
			if err := unmarshal(v, &d); err != nil {
				return err
			}
			for _, scope := range [][]byte{projectScope(d.ProjectID), envScope(d.EnvironmentID)} {
				for _, o := range []DeploymentOrder{OrderByID, OrderByFinishedAt} {
					if err := idx.Put(d.appendSortKey(join(scope, []byte{byte(o)}), o), nil); err != nil {
						return err
					}
					added++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		txBefore = tx.ID()
		return tx.Bucket(bktMeta).Delete(keyIndexLayout)
	})
	if err == nil {
		err = db.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if added != 4*n {
		t.Fatalf("added %d layout 1 keys, want %d", added, 4*n)
	}

	defer func(chunk int) { layoutChunk = chunk }(layoutChunk)
	layoutChunk = 7
	s, err = Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.db.View(func(tx *bolt.Tx) error {
		if txs, least := tx.ID()-txBefore, added/layoutChunk; txs < least {
			t.Errorf("the migration took %d transactions, want at least %d", txs, least)
		}
		if v := tx.Bucket(bktMeta).Get(keyIndexLayout); v == nil || readU64(v) != indexLayout {
			t.Errorf("layout mark %x, want %d", v, indexLayout)
		}
		keys := 0
		err := tx.Bucket(bktDeployIndex).ForEach(func(k, _ []byte) error {
			keys++
			if tag := k[len(projectScope(0))]; tag == byte(OrderByID) || tag == byte(OrderByFinishedAt) {
				t.Errorf("layout 1 key %x left", k)
			}
			return nil
		})
		if perDeployment := 2 * (len(scannedOrders) + 2); keys != perDeployment*n {
			t.Errorf("%d index keys, want %d", keys, perDeployment*n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := lists(s); !slices.Equal(got, want) {
		t.Errorf("lists after the migration differ:\n got %v\nwant %v", got, want)
	}
}

// An environment's newest deployment is the one with the highest id,
// whichever status partition holds it.
func TestNewestDeploymentIsTheHighestID(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "deploygraph.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	putTestProject(t, s)
	statuses := []DeploymentStatus{StatusFailed, StatusSuccess, StatusCreated, StatusCanceled, StatusRunning, StatusSuccess, StatusCreated}
	for i, st := range statuses {
		// Another environment's deployment in between: it is not newest here.
		for j, env := range []string{"production", "staging"} {
			d := createDeployment(t, s, 2*i+j, env, st)
			err := s.db.View(func(tx *bolt.Tx) error {
				newest, err := newestDeployment(tx, d.EnvironmentID)
				if err == nil && (newest == nil || newest.ID != d.ID) {
					t.Errorf("after %s deployment %d in %s: newest %+v", st, d.ID, env, newest)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Every stored deployment is in a status partition: one of an unknown
// status is refused.
func TestPutDeploymentRefusesAnUnknownStatus(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "deploygraph.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.update(func(tx *bolt.Tx) error {
		return putDeployment(tx, &Deployment{ID: 1, IID: 1, ProjectID: 1, EnvironmentID: 1, Status: "paused"})
	})
	if err == nil {
		t.Fatal("a deployment of status paused was stored")
	}
}
