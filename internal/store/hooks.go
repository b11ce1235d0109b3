package store

import (
	"errors"
	"sync"
	"syscall"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// Hooks tell whoever runs the store what it does, for metrics, without the
// store knowing how they are kept. Every field may be nil. They are called
// on the committer's goroutine or the caller's, so they must be quick and
// never block.
type Hooks struct {
	// Commit is called after each group commit, failed or not.
	Commit func(CommitStats)
	// Answered is called with a batch's answers once they are final (on
	// disk, or refused at the door), in the order of the batch.
	Answered func(results []*doorstepv1.RecordResult)
	// LogSize is called after a commit that grew an election's log, with
	// the log's new size.
	LogSize func(electionID string, size int64)
}

// CommitStats describes one group commit.
type CommitStats struct {
	// Jobs and Records are what the group held.
	Jobs, Records int
	// Took is the whole write transaction, from its start to its commit
	// on disk; Write the part bbolt spent writing and syncing pages
	// (fdatasync included).
	Took, Write time.Duration
	// DiskFull is set when the commit failed because the disk (or the
	// user's quota) is full.
	DiskFull bool
	Err      error
}

// ErrDiskFull is what callers are told when a write fails because the
// disk is full: nothing of the call was stored, and it is safe and useful
// to send it again once the operator has freed space.
var ErrDiskFull = election.Errorf(election.CodeResourceExhausted, "", "the server is out of disk space; your ballots are kept on this device and will be sent again")

// diskFull reports whether err is a write refused for lack of space.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// diskFullLogEvery is the most often the store repeats that the disk is
// full while it stays full.
const diskFullLogEvery = time.Minute

// diskFullLog says in the operator's log when commits start failing for
// lack of space (once per burst, then at most once per diskFullLogEvery
// with the count), and when they work again.
type diskFullLog struct {
	mu      sync.Mutex
	failing bool      // guarded by mu
	failed  int64     // commits failed in this burst; guarded by mu
	logged  time.Time // guarded by mu
}

func (d *diskFullLog) fail(s *Store, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failed++
	now := time.Now() // the wall clock: it only spaces out log lines
	if d.failing && now.Sub(d.logged) < diskFullLogEvery {
		return
	}
	d.failing, d.logged = true, now
	s.log.Error("out of disk space: writes fail, so pushes are refused (devices keep their ballots and retry); free space on the disk of the data folder",
		"failed_commits", d.failed, "err", err)
}

func (d *diskFullLog) ok(s *Store) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.failing {
		return
	}
	s.log.Warn("writes work again after the disk was full", "failed_commits", d.failed)
	d.failing, d.failed = false, 0
}

func (s *Store) answered(results []*doorstepv1.RecordResult) {
	if s.hooks.Answered != nil {
		s.hooks.Answered(results)
	}
}
