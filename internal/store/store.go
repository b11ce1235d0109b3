package store

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// Config configures a Store.
type Config struct {
	// Path is the bbolt file.
	Path string
	// Signer signs the checkpoints of the election logs.
	Signer ballotlog.CheckpointSigner
	// Origin prefixes every election log's checkpoint origin.
	Origin string
	Logger *slog.Logger
	Now    func() time.Time
	// MaxGroup bounds how many records one group commit takes (default 8192).
	MaxGroup int
	// NoSync skips fsync: for benchmarks that measure everything else only.
	NoSync bool
	// Hooks are told what the store does (metrics).
	Hooks Hooks
	// CommitFault is for tests only: when set, it is called in every write
	// transaction just before the commit, and an error it returns fails
	// the commit as a failed write to disk would (such as one wrapping
	// syscall.ENOSPC).
	CommitFault func() error
}

// Store is tallyd's state. It is safe for concurrent use.
type Store struct {
	db     *bolt.DB
	log    *slog.Logger
	now    func() time.Time
	signer ballotlog.CheckpointSigner
	origin string

	jobs     chan *job
	maxGroup int
	stop     chan struct{}
	done     chan struct{}
	closeMu  sync.Once

	mu        sync.RWMutex
	elections map[string]*electionCache // guarded by mu

	refused refusals

	hooks   Hooks
	fault   func() error
	diskLog diskFullLog

	changeMu sync.Mutex
	changes  map[string]chan struct{} // guarded by changeMu: closed at an election's next commit

	sigMu sync.Mutex
	sigs  map[string]signedCheckpoint // guarded by sigMu: election id → last signed checkpoint
}

// ErrClosed is returned for calls made after Close.
var ErrClosed = election.Errorf(election.CodeUnavailable, "", "the server is shutting down; try again in a moment")

// initialMmapSize is how much of the file bbolt maps from the start, so
// that the file's growth through a canvassing day does not remap it: a
// remap waits for every read transaction to end (the devices' checkpoint
// reads, the watchers' overview) and copies the writer's nodes out of the
// old map, all on the one commit path. It is address space, not memory.
// On Windows bbolt would grow the file to it, and a 32-bit process has
// little address space to spare: there bbolt grows the map as before.
func initialMmapSize() int {
	if runtime.GOOS == "windows" || strconv.IntSize < 64 {
		return 0
	}
	return 1 << 30
}

// Open opens or creates the store. Nothing is replayed: the file already
// holds the running state.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxGroup <= 0 {
		cfg.MaxGroup = 8192
	}
	if cfg.Signer == nil || len(cfg.Signer.PublicKey()) != ed25519.PublicKeySize {
		return nil, errors.New("store: a checkpoint signer with the server's key is required")
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: cfg.NoSync, FreelistType: bolt.FreelistMapType, InitialMmapSize: initialMmapSize()})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: another tallyd is using this data folder", filepath.Base(cfg.Path))
		}
		return nil, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	if err := db.Update(upgrade); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{
		db:        db,
		log:       cfg.Logger,
		now:       cfg.Now,
		signer:    cfg.Signer,
		origin:    cfg.Origin,
		jobs:      make(chan *job, 1024),
		maxGroup:  cfg.MaxGroup,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		elections: make(map[string]*electionCache),
		sigs:      make(map[string]signedCheckpoint),
		hooks:     cfg.Hooks,
		fault:     cfg.CommitFault,
	}
	if err := s.loadCaches(); err != nil {
		db.Close()
		return nil, err
	}
	go s.commitLoop()
	return s, nil
}

// Close stops the committer after the jobs already queued and closes the
// file.
func (s *Store) Close() error {
	var err error
	s.closeMu.Do(func() {
		close(s.stop)
		<-s.done
		err = s.db.Close()
	})
	return err
}

// Check runs bbolt's consistency check; tests call it on every file they
// leave.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var first error
		// Read to the end: bbolt's checker goroutine sends every error it
		// finds and stops only when they are read, so leaving after the
		// first would leak it, and its read transaction would keep Close
		// waiting for ever.
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	})
}

// job is one unit of work for the committer: it runs inside the shared
// write transaction. run may be called more than once (if the group's
// transaction fails it is retried alone), so it must only write through tx
// and reset its outputs at the start.
type job struct {
	election string
	records  int
	run      func(w *writeTx) error
	after    func() // runs after a successful commit (cache updates)
	err      error
	refused  error // set when run refused, having written nothing
	done     chan struct{}
}

// refusal is what a job's run returns when it declines to act before
// writing anything: the job's caller gets err, and the shared transaction
// goes on for the other jobs instead of being rolled back and redone.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(err error) error { return &refusal{err: err} }

// outcome is what a finished job's caller is told.
func (j *job) outcome(commitErr error) error {
	if commitErr != nil {
		return commitErr
	}
	return j.refused
}

func (s *Store) submit(ctx context.Context, j *job) error {
	j.done = make(chan struct{})
	select {
	case s.jobs <- j:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the job is committed or failed by the committer; wait for
	// it even if ctx ends, so an acknowledgement is never racing the commit.
	<-j.done
	return j.err
}

func (s *Store) commitLoop() {
	defer close(s.done)
	for {
		var first *job
		select {
		case first = <-s.jobs:
		case <-s.stop:
			s.drain()
			return
		}
		group := []*job{first}
		n := first.records
	fill:
		for n < s.maxGroup {
			select {
			case j := <-s.jobs:
				group = append(group, j)
				n += j.records
			default:
				break fill
			}
		}
		s.commitGroup(group)
	}
}

// drain fails jobs still queued at shutdown.
func (s *Store) drain() {
	for {
		select {
		case j := <-s.jobs:
			j.err = ErrClosed
			close(j.done)
		default:
			return
		}
	}
}

func (s *Store) commitGroup(group []*job) {
	err := s.runGroup(group)
	// A full disk fails every job alike: retrying them one by one would
	// only fail them again.
	if err != nil && len(group) > 1 && !errors.Is(err, ErrDiskFull) {
		// One job's failure must not fail the others: retry each alone.
		for _, j := range group {
			j.err = j.outcome(s.runGroup([]*job{j}))
			close(j.done)
		}
		return
	}
	for _, j := range group {
		j.err = j.outcome(err)
		close(j.done)
	}
}

func (s *Store) runGroup(group []*job) error {
	var touched []*writeTx
	start := time.Now()
	var written time.Duration
	if s.hooks.Commit != nil {
		written = s.writeTime()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		touched = touched[:0]
		ws := make(map[string]*writeTx)
		for _, j := range group {
			w := ws[j.election]
			if w == nil {
				var err error
				w, err = s.beginElection(tx, j.election)
				if err != nil {
					return err
				}
				ws[j.election] = w
				touched = append(touched, w)
			}
			j.refused = nil
			if err := j.run(w); err != nil {
				var rf *refusal
				if !errors.As(err, &rf) {
					return err
				}
				j.refused = rf.err
			}
		}
		for _, w := range touched {
			if err := w.finish(); err != nil {
				return err
			}
		}
		if s.fault != nil {
			return s.fault()
		}
		return nil
	})
	if s.hooks.Commit != nil {
		cs := CommitStats{Jobs: len(group), Took: time.Since(start), Write: s.writeTime() - written, DiskFull: diskFull(err), Err: err}
		for _, j := range group {
			cs.Records += j.records
		}
		s.hooks.Commit(cs)
	}
	if err != nil {
		if diskFull(err) {
			// Nothing of the group is on disk; the callers are told so in
			// words a canvasser understands, and their devices send again.
			s.diskLog.fail(s, err)
			return fmt.Errorf("store commit: %w: %w", ErrDiskFull, err)
		}
		s.log.Error("commit failed", "jobs", len(group), "err", err)
		return fmt.Errorf("store commit: %w", err)
	}
	s.diskLog.ok(s)
	for _, j := range group {
		if j.after != nil && j.refused == nil {
			j.after()
		}
	}
	for _, w := range touched {
		s.changed(w.id)
		if s.hooks.LogSize != nil && w.logSize != w.logStart {
			s.hooks.LogSize(w.id, w.logSize)
		}
	}
	return nil
}

// writeTime is how long bbolt has spent writing and syncing pages since
// the file was opened.
func (s *Store) writeTime() time.Duration {
	st := s.db.Stats()
	return st.TxStats.GetWriteTime()
}

// Changed returns a channel that is closed when the election next changes
// (a commit that touched it): a watcher waits on it, then reads the new
// state. Committing never waits for a watcher.
func (s *Store) Changed(electionID string) <-chan struct{} {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	if s.changes == nil {
		s.changes = make(map[string]chan struct{})
	}
	ch := s.changes[electionID]
	if ch == nil {
		ch = make(chan struct{})
		s.changes[electionID] = ch
	}
	return ch
}

func (s *Store) changed(electionID string) {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	if ch := s.changes[electionID]; ch != nil {
		close(ch)
		delete(s.changes, electionID)
	}
}

// errNoElection answers a call naming an election this server does not
// hold.
func errNoElection(id string) *election.Error {
	return election.Errorf(election.CodeNotFound, "election_id", "there is no election %q on this server: check the election id and the server address", id)
}

// errNotEnrolled answers a query about a device the election does not
// know.
func errNotEnrolled(id string) *election.Error {
	return election.Errorf(election.CodeNotFound, "device_id", "device %q is not enrolled in this election", id)
}
