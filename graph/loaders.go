package graph

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/deploygraph/deploygraph/store"
)

// When a loader reads the store. A lookup made outside any list is read at
// once, in the caller's goroutine: an object's fields are resolved one
// after another (see graph/generate), so nothing else of the request could
// join its batch.
// Inside a list, the other items look up the same field side by side, and
// the batch is sent as soon as every goroutine of the request waits (for a
// batch, or for the items of a list: see operation.pause), else once no
// lookup of the request has arrived for BatchQuiet, or BatchWait after its
// first key at the latest.
//
// A list's items are resolved by a few goroutines (see marshalItems), so
// the keys of one level arrive over a span that grows with the page
// (milliseconds on two cores for a page of 50 under load). A fixed wait
// either splits that level into several reads or, long enough to cover
// it, adds its full length to every level. Waiting for a quiet moment
// dispatches as soon as the level's items are all waiting, whatever the
// page size; the dataloader library's default of 16 ms would add 16 ms to
// every nesting level.
var (
	BatchQuiet = 200 * time.Microsecond
	BatchWait  = 10 * time.Millisecond
)

// maxBatch bounds one batch's read transaction.
const maxBatch = 1000

// Loader is a request's dataloader for one kind of lookup: outside lists
// it reads at once; inside them it gathers a batch from the items, sent
// when every goroutine of the request waits, at the request's next quiet
// moment (see BatchQuiet), or BatchWait after its first key.
//
// It gathers its batches itself rather than through the dataloader
// library's batcher, which takes a channel send per key, a goroutine per
// batch, and that goroutine's stack grown a copy at a time through the
// store's deep calls: a batch is read on a goroutine of itemWorkers, whose
// stacks have grown already.
type Loader[K comparable, V any] struct {
	name  string
	store *store.Store
	fetch batchRead[K, V]
	quiet *quietTimer
	// waiting is set while the batch being gathered waits for the other
	// items of a list, for the metrics.
	waiting atomic.Bool

	gatherMu sync.Mutex
	gather   *listBatch[K, V] // being gathered; nil when none is
	// reading holds the keys of the batches sent and not yet read: a key
	// asked for again meanwhile waits for that batch instead of joining
	// the next one, which would read it again.
	reading map[K]*listBatch[K, V]

	// known answers the keys already read, by a map lookup: a page's items
	// look up what the page prefetched, a few hundred lookups, and should
	// not gather a batch or reset the quiet timer for them. A request's
	// loader gets a batch or two.
	known   publishedMap[K, V]
	knownMu sync.Mutex // held for waiters, and to publish known
	// waiters counts, by key, the goroutines that will wait for its batch
	// (see await).
	waiters map[K]int
}

// Load asks for one key: at once outside lists, else with the other items'
// keys (see BatchQuiet).
func (l *Loader[K, V]) Load(ctx context.Context, key K) dataloader.Thunk[V] {
	if v, ok := l.lookup(key); ok {
		return answer(v)
	}
	if !inList(ctx) {
		v, err := l.readOne(ctx, key)
		return func() (V, error) { return v, err }
	}
	return l.joinBatch(ctx, key)
}

// get is Load(ctx, key)() without a thunk where none is needed: for a key
// read before, and outside lists, where it is read at once.
func (l *Loader[K, V]) get(ctx context.Context, key K) (V, error) {
	if v, ok := l.lookup(key); ok {
		return v, nil
	}
	if !inList(ctx) {
		return l.readOne(ctx, key)
	}
	return l.joinBatch(ctx, key)()
}

// readOne reads key, not read before, at once in the caller's goroutine.
func (l *Loader[K, V]) readOne(ctx context.Context, key K) (V, error) {
	return resultOf(l.readBatch(ctx, []K{key}, false), 0, key)
}

// joinBatch adds key, not read before, to the batch of a list's items.
func (l *Loader[K, V]) joinBatch(ctx context.Context, key K) dataloader.Thunk[V] {
	if thunk, ok := l.await(key); ok {
		return thunk
	}
	thunk := l.enqueue(ctx, key)
	l.gathering()
	op := operationOf(ctx)
	return func() (V, error) {
		handOff(ctx)
		op.pause() // counted again when key's batch is read (see woken)
		return thunk()
	}
}

// await notes that a goroutine will wait for key's batch, unless key was
// read meanwhile (then it answers it). It is counted as resolving again when
// that batch is read, before any waiter is woken (see woken): counted
// when it next runs instead, a woken item not yet running could miss the
// gathering of the next level, which the others would send without it.
func (l *Loader[K, V]) await(key K) (dataloader.Thunk[V], bool) {
	l.knownMu.Lock()
	defer l.knownMu.Unlock()
	if v, ok := l.lookup(key); ok {
		return answer(v), true
	}
	if l.waiters == nil {
		l.waiters = make(map[K]int)
	}
	l.waiters[key]++
	return nil, false
}

// answer is the thunk of a value read before.
func answer[V any](v V) dataloader.Thunk[V] {
	return func() (V, error) { return v, nil }
}

// LoadMany asks for several keys in one batch, as Load does for one: they
// have all joined the batch being gathered when it returns.
func (l *Loader[K, V]) LoadMany(ctx context.Context, keys []K) dataloader.ThunkMany[V] {
	if !inList(ctx) {
		values, errs := l.read(ctx, keys)
		return func() ([]V, []error) { return values, errs }
	}
	known := make([]V, len(keys))
	thunks := make([]dataloader.Thunk[V], len(keys)) // nil where known
	gathered := false
	for i, key := range keys {
		var ok bool
		if known[i], ok = l.lookup(key); ok {
			continue
		}
		thunks[i], gathered = l.enqueue(ctx, key), true
	}
	// A goroutine waiting here stays counted as resolving (see
	// operation.pause): its keys may fall in several batches, so it is sent
	// at the quiet moment. It hands its list's items on (see handOff) all
	// the same, so that theirs join.
	if gathered {
		l.gathering()
	}
	return func() ([]V, []error) {
		if gathered {
			handOff(ctx)
		}
		values, errs := slices.Clone(known), make([]error, len(keys))
		for i, thunk := range thunks {
			if thunk != nil {
				values[i], errs[i] = thunk()
			}
		}
		return values, errs
	}
}

// read answers keys now: those read before from what was kept, the others
// (each once) in one batch.
func (l *Loader[K, V]) read(ctx context.Context, keys []K) ([]V, []error) {
	values, errs := make([]V, len(keys)), make([]error, len(keys))
	var (
		missing []K
		at      map[K]int // a missing key's place in missing
	)
	for i, key := range keys {
		if v, ok := l.lookup(key); ok {
			values[i] = v
			continue
		}
		if at == nil {
			at = make(map[K]int, len(keys)-i)
		}
		if _, ok := at[key]; !ok {
			at[key] = len(missing)
			missing = append(missing, key)
		}
	}
	if len(missing) == 0 {
		return values, errs
	}
	results := l.readBatch(ctx, missing, false)
	for i, key := range keys {
		if j, ok := at[key]; ok {
			values[i], errs[i] = resultOf(results, j, key)
		}
	}
	return values, errs
}

// resultOf is what a read answered for keys[i] of what it was given; a key
// the read left out (it answered fewer keys than it was given) fails.
func resultOf[K comparable, V any](results []*dataloader.Result[V], i int, key K) (V, error) {
	if i >= len(results) || results[i] == nil {
		var none V
		return none, fmt.Errorf("loader: no result for key %v", key)
	}
	return results[i].Data, results[i].Error
}

// gathering notes, for the quiet timer and the metrics, that a key waits in
// the batch being gathered for the other items of a list.
func (l *Loader[K, V]) gathering() {
	l.waiting.Store(true)
	l.quiet.touch()
}

// inList reports whether the field being resolved is inside a list item.
func inList(ctx context.Context) bool {
	for fc := graphql.GetFieldContext(ctx); fc != nil; fc = fc.Parent {
		if fc.Index != nil {
			return true
		}
	}
	return false
}

// Prime caches a value read by other means, unless key was read already.
func (l *Loader[K, V]) Prime(key K, value V) {
	if _, ok := l.lookup(key); !ok {
		l.remember([]K{key}, []*dataloader.Result[V]{{Data: value}})
	}
}

// lookup answers key if it was read before.
func (l *Loader[K, V]) lookup(key K) (V, bool) {
	return l.known.get(key)
}

// remember keeps what a batch read; a key whose read failed is read again
// if it is asked for again.
func (l *Loader[K, V]) remember(keys []K, results []*dataloader.Result[V]) {
	l.knownMu.Lock()
	defer l.knownMu.Unlock()
	l.known.add(len(keys), func(known map[K]V) {
		for i, key := range keys {
			if i < len(results) && results[i] != nil && results[i].Error == nil {
				known[key] = results[i].Data
			}
		}
	})
}

// woken returns how many goroutines wait for the batch of keys, which is
// read, and forgets them. After remember, so that a lookup of a key it kept
// finds it instead of waiting.
func (l *Loader[K, V]) woken(keys []K) (waiters int) {
	l.knownMu.Lock()
	defer l.knownMu.Unlock()
	for _, key := range keys {
		waiters += l.waiters[key]
		delete(l.waiters, key)
	}
	return waiters
}

// flush sends the batch being gathered, if there is one.
func (l *Loader[K, V]) flush() {
	l.gatherMu.Lock()
	b := l.gather
	l.gatherMu.Unlock()
	if b != nil {
		l.send(b)
	}
}

// listBatch is a batch being gathered for the items of a list: its keys,
// each once, and once it is read, what was read.
type listBatch[K comparable, V any] struct {
	ctx   context.Context // its first key's
	keys  []K
	at    map[K]int     // a key's place in keys
	timer *time.Timer   // sends it BatchWait after its first key
	done  chan struct{} // closed once read

	results []*dataloader.Result[V]
	failure error // a panic in the read
}

// enqueue adds key to the batch being gathered, starting one if none is,
// and returns what waits for its result: the result of the batch being
// read for it, if there is one.
func (l *Loader[K, V]) enqueue(ctx context.Context, key K) dataloader.Thunk[V] {
	l.gatherMu.Lock()
	if b, ok := l.reading[key]; ok {
		l.gatherMu.Unlock()
		return b.thunk(b.at[key])
	}
	b := l.gather
	if b == nil {
		b = &listBatch[K, V]{ctx: ctx, at: map[K]int{}, done: make(chan struct{})}
		b.timer = time.AfterFunc(BatchWait, func() { l.send(b) })
		l.gather = b
	}
	i, ok := b.at[key]
	if !ok {
		i = len(b.keys)
		b.at[key] = i
		b.keys = append(b.keys, key)
	}
	full := len(b.keys) >= maxBatch
	l.gatherMu.Unlock()
	if full {
		l.send(b)
	}
	return b.thunk(i)
}

// send reads batch b on a goroutine of itemWorkers, unless it was sent
// already, and wakes its waiters once it is read. A panic in the read
// fails its keys.
func (l *Loader[K, V]) send(b *listBatch[K, V]) {
	l.gatherMu.Lock()
	if l.gather != b {
		l.gatherMu.Unlock()
		return
	}
	l.gather = nil
	if l.reading == nil {
		l.reading = make(map[K]*listBatch[K, V])
	}
	for _, key := range b.keys {
		l.reading[key] = b
	}
	l.gatherMu.Unlock()
	b.timer.Stop()
	waited := l.waiting.Swap(false)
	itemWorkers.run(jobFunc(func() {
		defer close(b.done)
		defer l.doneReading(b) // what it read is known now, or failed
		defer func() {
			if r := recover(); r != nil {
				b.failure = fmt.Errorf("loader %s: panic while reading a batch: %v", l.name, r)
			}
		}()
		b.results = l.readBatch(b.ctx, b.keys, waited)
	}))
}

// doneReading forgets that batch b is being read.
func (l *Loader[K, V]) doneReading(b *listBatch[K, V]) {
	l.gatherMu.Lock()
	defer l.gatherMu.Unlock()
	for _, key := range b.keys {
		if l.reading[key] == b {
			delete(l.reading, key)
		}
	}
}

// thunk waits for b to be read and answers its i-th key.
func (b *listBatch[K, V]) thunk(i int) dataloader.Thunk[V] {
	return func() (V, error) {
		<-b.done
		if b.failure != nil {
			var none V
			return none, b.failure
		}
		return resultOf(b.results, i, b.keys[i])
	}
}

// quietTimer flushes every loader of a request once lookups stop arriving.
type quietTimer struct {
	op      *operation // whose goroutines wait for the batches; nil in tests
	mu      sync.Mutex
	timer   *time.Timer
	loaders []interface{ flush() }
	onBatch func(loader string, keys int, waited bool)
}

func (q *quietTimer) touch() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.timer == nil {
		q.timer = time.AfterFunc(BatchQuiet, q.flush)
		return
	}
	q.timer.Reset(BatchQuiet)
}

func (q *quietTimer) flush() {
	for _, l := range q.loaders {
		l.flush()
	}
}

// Loaders are one request's dataloaders: every nested lookup goes through
// them, so a level of N parents costs one store read, not N.
type Loaders struct {
	quiet *quietTimer

	Users           Loader[int64, *store.User]
	Groups          Loader[int64, *store.Group]
	Projects        Loader[int64, *store.Project]
	Environments    Loader[int64, *store.Environment]
	Deployments     Loader[int64, *store.Deployment]
	Jobs            Loader[int64, *store.Job]
	Pipelines       Loader[int64, *store.Pipeline]
	MergeRequests   Loader[int64, *store.MergeRequest]
	AccessTokens    Loader[int64, *store.AccessToken]
	Commits         Loader[string, *store.Commit]
	EnvByName       Loader[store.EnvironmentKey, *store.Environment]
	DeploymentByIID Loader[store.IIDKey, *store.Deployment]
	MRByIID         Loader[store.IIDKey, *store.MergeRequest]
	LastDeployments Loader[store.LastDeploymentKey, *store.Deployment]
	Approvals       Loader[int64, []store.Approval]
	Protections     Loader[store.EnvironmentKey, *store.ProtectedEnvironment]
	ProjectProtects Loader[int64, []store.ProtectedEnvironment]
	MemberLevels    Loader[store.MemberKey, store.AccessLevel]
	UserGroups      Loader[int64, []int64]

	// List loaders are keyed by the query's address: each connection field
	// asks once, and the batch answers all of a level in one transaction.
	DeploymentPages    Loader[*store.DeploymentQuery, store.Page[*store.Deployment]]
	DeploymentCounts   Loader[*store.DeploymentQuery, int]
	EnvironmentPages   Loader[*store.EnvironmentQuery, store.Page[*store.Environment]]
	EnvironmentCounts  Loader[*store.EnvironmentQuery, int]
	MergeRequestPages  Loader[*store.MergeRequestQuery, store.Page[*store.MergeRequest]]
	MergeRequestCounts Loader[*store.MergeRequestQuery, int]

	// mergeRequests keeps the queries pages prefetched, so that their
	// items, every one of which reads it, load the same keys.
	mergeRequests publishedMap[mergeRequestsOf, *store.MergeRequestQuery]
}

// mergeRequestsOf names the merge requests that one mergeRequests field
// of the query asks of one deployment.
type mergeRequestsOf struct {
	field      *ast.Field
	deployment int64
}

// keepMergeRequests keeps qs, the queries of field for a page's
// deployments that it prefetches, and returns the queries kept: a
// deployment's first.
func (l *Loaders) keepMergeRequests(field *ast.Field, qs []*store.MergeRequestQuery) []*store.MergeRequestQuery {
	l.mergeRequests.add(len(qs), func(kept map[mergeRequestsOf]*store.MergeRequestQuery) {
		for i, q := range qs {
			at := mergeRequestsOf{field, q.DeploymentID}
			if k, ok := kept[at]; ok {
				qs[i] = k
			} else {
				kept[at] = q
			}
		}
	})
	return qs
}

// keptMergeRequests returns the query kept for the field being resolved and
// q's deployment when it asks what q asks, else q.
func (l *Loaders) keptMergeRequests(ctx context.Context, q *store.MergeRequestQuery) *store.MergeRequestQuery {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return q
	}
	kept, ok := l.mergeRequests.get(mergeRequestsOf{fc.Field.Field, q.DeploymentID})
	if ok && sameMergeRequests(kept, q) {
		return kept
	}
	return q
}

// sameMergeRequests reports whether a and b ask the same: the same values,
// and the same pointers where they point (the items of a page share their
// field's arguments, see fieldArgs). TestSameMergeRequestsComparesEveryField
// holds it to every field of the query.
func sameMergeRequests(a, b *store.MergeRequestQuery) bool {
	return a.ProjectID == b.ProjectID && a.DeploymentID == b.DeploymentID &&
		a.State == b.State && a.OrderBy == b.OrderBy && a.Asc == b.Asc &&
		slices.Equal(a.Labels, b.Labels) && a.Search == b.Search && a.AuthorUsername == b.AuthorUsername &&
		a.SourceBranch == b.SourceBranch && a.TargetBranch == b.TargetBranch &&
		a.CreatedAfter == b.CreatedAfter && a.CreatedBefore == b.CreatedBefore &&
		a.UpdatedAfter == b.UpdatedAfter && a.UpdatedBefore == b.UpdatedBefore &&
		a.Draft == b.Draft && a.Page == b.Page
}

// NewLoaders makes the dataloaders for one request. onBatch, when set,
// hears of every batch: the loader's name, its number of keys and whether
// it waited for the other items of a list. The loaders lie in the one
// Loaders value, and read the store through method expressions (no
// closure, no method value): a request makes them in three allocations.
func NewLoaders(s *store.Store, onBatch func(loader string, keys int, waited bool)) *Loaders {
	q := &quietTimer{onBatch: onBatch, loaders: make([]interface{ flush() }, 0, 32)} // room for every loader below
	l := &Loaders{quiet: q}
	use(q, s, &l.Users, "users", (*store.Store).Users)
	use(q, s, &l.Groups, "groups", (*store.Store).Groups)
	use(q, s, &l.Projects, "projects", (*store.Store).Projects)
	use(q, s, &l.Environments, "environments", (*store.Store).Environments)
	use(q, s, &l.Deployments, "deployments", (*store.Store).Deployments)
	use(q, s, &l.Jobs, "jobs", (*store.Store).Jobs)
	use(q, s, &l.Pipelines, "pipelines", (*store.Store).Pipelines)
	use(q, s, &l.MergeRequests, "merge_requests", (*store.Store).MergeRequests)
	use(q, s, &l.AccessTokens, "access_tokens", (*store.Store).AccessTokens)
	use(q, s, &l.Commits, "commits", (*store.Store).Commits)
	use(q, s, &l.EnvByName, "environment_by_name", (*store.Store).EnvironmentsByName)
	use(q, s, &l.DeploymentByIID, "deployment_by_iid", (*store.Store).DeploymentsByIID)
	use(q, s, &l.MRByIID, "merge_request_by_iid", (*store.Store).MergeRequestsByIID)
	use(q, s, &l.LastDeployments, "last_deployments", (*store.Store).LastDeployments)
	use(q, s, &l.Approvals, "approvals", (*store.Store).Approvals)
	use(q, s, &l.Protections, "protected_environments", (*store.Store).ProtectedEnvironments)
	use(q, s, &l.ProjectProtects, "project_protected_environments", (*store.Store).ProjectProtectedEnvironments)
	use(q, s, &l.MemberLevels, "member_levels", (*store.Store).MemberLevels)
	use(q, s, &l.UserGroups, "user_groups", (*store.Store).UserGroupIDs)

	useList(q, s, &l.DeploymentPages, "deployment_pages", (*store.Store).ListDeployments)
	useList(q, s, &l.DeploymentCounts, "deployment_counts", (*store.Store).CountDeployments)
	useList(q, s, &l.EnvironmentPages, "environment_pages", (*store.Store).ListEnvironments)
	useList(q, s, &l.EnvironmentCounts, "environment_counts", (*store.Store).CountEnvironments)
	useList(q, s, &l.MergeRequestPages, "merge_request_pages", (*store.Store).ListMergeRequests)
	useList(q, s, &l.MergeRequestCounts, "merge_request_counts", (*store.Store).CountMergeRequests)
	return l
}

// initLoader readies l, one of the request's loaders, to read through
// fetch.
func initLoader[K comparable, V any](q *quietTimer, s *store.Store, l *Loader[K, V], name string, fetch batchRead[K, V]) {
	l.quiet, l.store, l.name, l.fetch = q, s, name, fetch
	q.loaders = append(q.loaders, l)
}

// use readies l to batch a store lookup that answers index-aligned to
// its keys.
func use[K comparable, V any](q *quietTimer, s *store.Store, l *Loader[K, V], name string, read lookups[K, V]) {
	initLoader(q, s, l, name, batchRead[K, V](read))
}

// useList readies l to batch list queries, each of which may fail on its
// own.
func useList[Q any, V any](q *quietTimer, s *store.Store, l *Loader[*Q, V], name string, read listQueries[Q, V]) {
	initLoader(q, s, l, name, batchRead[*Q, V](read))
}

// batchRead reads keys from the store, a result for each key. Its
// implementations are funcs, which an interface holds without allocating.
type batchRead[K comparable, V any] interface {
	read(ctx context.Context, s *store.Store, keys []K) []*dataloader.Result[V]
}

// lookups is a store lookup that answers index-aligned to its keys, or
// fails as a whole.
type lookups[K comparable, V any] func(*store.Store, context.Context, []K) ([]V, error)

func (f lookups[K, V]) read(ctx context.Context, s *store.Store, keys []K) []*dataloader.Result[V] {
	values, err := f(s, ctx, keys)
	out, each := make([]*dataloader.Result[V], len(keys)), make([]dataloader.Result[V], len(keys))
	for i := range keys {
		if err != nil {
			each[i].Error = err
		} else {
			each[i].Data = values[i]
		}
		out[i] = &each[i]
	}
	return out
}

// listQueries is a store read of list queries, each of which may fail on
// its own.
type listQueries[Q any, V any] func(*store.Store, context.Context, []Q) ([]V, []error)

func (f listQueries[Q, V]) read(ctx context.Context, s *store.Store, keys []*Q) []*dataloader.Result[V] {
	qs := make([]Q, len(keys))
	for i, k := range keys {
		qs[i] = *k
	}
	values, errs := f(s, ctx, qs)
	out, each := make([]*dataloader.Result[V], len(keys)), make([]dataloader.Result[V], len(keys))
	for i := range keys {
		each[i] = dataloader.Result[V]{Data: values[i], Error: errs[i]}
		out[i] = &each[i]
	}
	return out
}

// readBatch reads keys from the store, keeps what it read, and tells the
// metrics whether the batch waited for the items of a list.
func (l *Loader[K, V]) readBatch(ctx context.Context, keys []K, waited bool) []*dataloader.Result[V] {
	if l.quiet.onBatch != nil {
		l.quiet.onBatch(l.name, len(keys), waited)
	}
	results := l.fetch.read(ctx, l.store, keys)
	l.remember(keys, results)
	l.quiet.op.resume(l.woken(keys))
	return results
}

// load reads one key through a loader.
func load[K comparable, V any](ctx context.Context, l *Loader[K, V], key K) (V, error) {
	return l.get(ctx, key)
}
