package store

// Tests of the environment helpers that createDeployment and
// updateDeployment call inside their own transactions.

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var ewiNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// newEWIStore opens a store holding project 1 with the environments given;
// the file is checked for consistency when the test ends.
func newEWIStore(t *testing.T, envs ...*Environment) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "deploygraph.db"), Options{NoSync: true, Clock: func() time.Time { return ewiNow }})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("store consistency check: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	err = s.update(func(tx *bolt.Tx) error {
		if err := putProject(tx, &Project{ID: 1, Name: "app", Path: "app", FullPath: "acme/app", Visibility: Private}); err != nil {
			return err
		}
		for _, e := range envs {
			if err := putEnvironment(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("set up store: %v", err)
	}
	return s
}

func ewiEnvironment(t *testing.T, s *Store, id int64) *Environment {
	t.Helper()
	envs, err := s.Environments(t.Context(), []int64{id})
	if err != nil {
		t.Fatalf("load environment %d: %v", id, err)
	}
	return envs[0]
}

func TestFindOrCreateEnvironment(t *testing.T) {
	old := ewiNow.Add(-time.Hour)
	existing := func() *Environment {
		return &Environment{ID: 7, ProjectID: 1, Name: "production", Slug: "production", State: EnvStopped,
			Tier: TierProduction, CreatedAt: old, UpdatedAt: old}
	}

	t.Run("finds the environment of that name unchanged", func(t *testing.T) {
		s := newEWIStore(t, existing())
		var got *Environment
		err := s.update(func(tx *bolt.Tx) (err error) {
			got, err = findOrCreateEnvironment(tx, &changes{}, 1, "production", ewiNow)
			return err
		})
		if err != nil {
			t.Fatalf("findOrCreateEnvironment: %v", err)
		}
		if want := existing(); !reflect.DeepEqual(got, want) {
			t.Errorf("found = %+v, want %+v", got, want)
		}
		if stored := ewiEnvironment(t, s, 7); !reflect.DeepEqual(stored, existing()) {
			t.Errorf("stored = %+v, want it unchanged: %+v", stored, existing())
		}
	})

	t.Run("creates a missing environment with createEnvironment's rules", func(t *testing.T) {
		s := newEWIStore(t, existing())
		var got *Environment
		err := s.update(func(tx *bolt.Tx) (err error) {
			got, err = findOrCreateEnvironment(tx, &changes{}, 1, "review/fix-foo", ewiNow)
			return err
		})
		if err != nil {
			t.Fatalf("findOrCreateEnvironment: %v", err)
		}
		want := &Environment{ID: 8, ProjectID: 1, Name: "review/fix-foo", Slug: Slugify("review/fix-foo"),
			State: EnvAvailable, Tier: TierDevelopment, CreatedAt: ewiNow, UpdatedAt: ewiNow}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("created = %+v, want %+v", got, want)
		}
		if stored := ewiEnvironment(t, s, 8); !reflect.DeepEqual(stored, want) {
			t.Errorf("stored = %+v, want %+v", stored, want)
		}
	})

	t.Run("names are case-sensitive", func(t *testing.T) {
		s := newEWIStore(t, existing())
		var got *Environment
		err := s.update(func(tx *bolt.Tx) (err error) {
			got, err = findOrCreateEnvironment(tx, &changes{}, 1, "Production", ewiNow)
			return err
		})
		if err != nil {
			t.Fatalf("findOrCreateEnvironment: %v", err)
		}
		if got.ID == 7 {
			t.Errorf("Production found environment 7 (production), want a new environment")
		}
	})

	t.Run("refuses an invalid name", func(t *testing.T) {
		s := newEWIStore(t)
		err := s.update(func(tx *bolt.Tx) error {
			_, err := findOrCreateEnvironment(tx, &changes{}, 1, "/review", ewiNow)
			return err
		})
		if got, want := ErrorCode(err), EInvalid; got != want {
			t.Fatalf("error code = %s (%v), want %s", got, err, want)
		}
		if got := ewiEnvironment(t, s, 1); got != nil {
			t.Errorf("environment 1 = %+v, want none", got)
		}
	})
}

func TestRestartEnvironment(t *testing.T) {
	old := ewiNow.Add(-time.Hour)
	deleteAt := ewiNow.Add(24 * time.Hour)
	tests := []struct {
		name      string
		state     EnvironmentState
		restarted bool
	}{
		{name: "stopped environment becomes available", state: EnvStopped, restarted: true},
		{name: "stopping environment becomes available", state: EnvStopping, restarted: true},
		{name: "available environment is left alone", state: EnvAvailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := &Environment{ID: 3, ProjectID: 1, Name: "review/x", Slug: "review-x", State: tt.state,
				Tier: TierDevelopment, CreatedAt: old, UpdatedAt: old, AutoDeleteAt: &deleteAt}
			s := newEWIStore(t, before)
			e := ewiEnvironment(t, s, 3)
			err := s.update(func(tx *bolt.Tx) error { return restartEnvironment(tx, &changes{}, e, ewiNow) })
			if err != nil {
				t.Fatalf("restartEnvironment: %v", err)
			}
			want := *before
			if tt.restarted {
				want.State, want.UpdatedAt, want.AutoDeleteAt = EnvAvailable, ewiNow, nil
			}
			if !reflect.DeepEqual(e, &want) {
				t.Errorf("environment after restart = %+v, want %+v", e, &want)
			}
			if stored := ewiEnvironment(t, s, 3); !reflect.DeepEqual(stored, &want) {
				t.Errorf("stored = %+v, want %+v", stored, &want)
			}
		})
	}
}

func TestDeleteEnvironmentRecordLeavesNoKeys(t *testing.T) {
	env := &Environment{ID: 3, ProjectID: 1, Name: "review/x", Slug: "review-x", State: EnvStopped,
		Tier: TierDevelopment, CreatedAt: ewiNow, UpdatedAt: ewiNow}
	keep := &Environment{ID: 4, ProjectID: 1, Name: "production", Slug: "production", State: EnvAvailable,
		Tier: TierProduction, CreatedAt: ewiNow, UpdatedAt: ewiNow}
	s := newEWIStore(t, env, keep)
	err := s.update(func(tx *bolt.Tx) error {
		for i, envID := range []int64{3, 3, 4} {
			id := int64(i + 1)
			d := &Deployment{ID: id, IID: id, ProjectID: 1, EnvironmentID: envID, Ref: "main",
				SHA: "99d03678b90d914dbb1b109132516d71a4a03ea8", Status: StatusSuccess, CreatedAt: ewiNow, UpdatedAt: ewiNow}
			if err := putDeployment(tx, d); err != nil {
				return err
			}
		}
		return deleteEnvironmentRecord(tx, &changes{}, env)
	})
	if err != nil {
		t.Fatalf("deleteEnvironmentRecord: %v", err)
	}
	err = s.view(func(tx *bolt.Tx) error {
		for _, k := range []struct {
			bucket, prefix []byte
		}{
			{bktDeployIndex, envScope(3)},
			{bktDeployCounts, envScope(3)},
			{bktEnvByName, join(u64(1), []byte("review/x"))},
			{bktEnvBySlug, join(u64(1), []byte("review-x"))},
			{bktProjectEnvs, pair(1, 3)},
			{bktEnvironments, u64(3)},
			{bktDeployments, u64(1)},
			{bktDeployments, u64(2)},
		} {
			if got, _ := tx.Bucket(k.bucket).Cursor().Seek(k.prefix); got != nil && hasPrefix(got, k.prefix) {
				t.Errorf("%s still holds %x, want no key starting with %x", k.bucket, got, k.prefix)
			}
		}
		if tx.Bucket(bktDeployments).Get(u64(3)) == nil || tx.Bucket(bktEnvironments).Get(u64(4)) == nil {
			t.Errorf("the other environment or its deployment is gone, want them kept")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
