package device

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/hlc"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// Errors a canvasser may meet; each says what to do next.
var (
	ErrNotEnrolled     = errors.New("this device has not joined an election: run `doorstep canvass join CODE` with the code from the election committee")
	ErrAlreadyEnrolled = errors.New("this device has already joined an election; to join another, use another device folder (--device NAME or --device-dir)")
	ErrNoElection      = errors.New("this device has not received the election's definition yet: run `doorstep canvass sync` where the server is reachable")
	ErrNoRoster        = errors.New("this device has no roster of units yet (the committee may not have imported it): run `doorstep canvass sync` later")
	// ErrFingerprintMismatch: the server's key is not the one the committee
	// named in the enrollment code.
	ErrFingerprintMismatch = errors.New("the server's key does not match the fingerprint in the enrollment code: this may not be the committee's server; check the server address and ask the committee")
	// ErrEquivocation: the server showed committee records that contradict
	// ones this device already holds.
	ErrEquivocation = errors.New("the server's copy of the committee's records differs from the one this device already holds; do not trust this server and tell the election committee")
	// ErrChainFork: the server holds records from this device's identity
	// that this device did not make, or that differ from its own.
	ErrChainFork = errors.New("the server holds records under this device's id that differ from this device's own; another device may be using this identity, or this folder was restored from an old copy: stop and tell the election committee")
	// ErrRevoked: the committee revoked this device.
	ErrRevoked = errors.New("the election committee has revoked this device; its records stay on it as evidence: contact the committee")
	// ErrClosed: the device was closed.
	ErrClosed = errors.New("the device is closed")
)

// Enrollment is what the device learned when it joined an election.
type Enrollment struct {
	// Server is the tallyd address, HOST:PORT.
	Server     string `json:"server"`
	ElectionID string `json:"election_id"`
	// DeviceID is the id the server gave this device; it is the author_id of
	// every record the device makes.
	DeviceID string `json:"device_id"`
	// ServerKey is the server's ed25519 key that signs checkpoints.
	ServerKey   ed25519.PublicKey `json:"server_public_key"`
	Fingerprint string            `json:"fingerprint"`
	// TLSPin is the pin of the server's TLS certificate from the
	// enrollment code (servercert.Pin, or servercert.Plaintext).
	TLSPin    string    `json:"tls_pin,omitempty"`
	LogOrigin string    `json:"log_origin,omitempty"`
	Label     string    `json:"label,omitempty"`
	JoinedAt  time.Time `json:"joined_at,omitzero"`
}

// Options are a device's collaborators. Zero values pick the real ones.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Rand is the source of the device key; crypto/rand when nil.
	Rand io.Reader
	// Dial opens a client connection to the server as c says (pinned to the
	// server's certificate); c.New when nil.
	Dial func(c client.Config, addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error)
	Sync SyncOptions
}

// Device is one canvasser's device: its folder, key and bbolt file. Its
// methods are safe for concurrent use (the walk command records ballots
// while a background sync runs). Close it when done.
type Device struct {
	dir   string
	log   *slog.Logger
	now   func() time.Time
	rand  io.Reader
	dialF func(c client.Config, addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error)
	sopt  SyncOptions
	st    *store
	clock *hlc.Clock

	mu     sync.RWMutex
	enr    *Enrollment          // guarded by mu; nil until joined
	key    ed25519.PrivateKey   // guarded by mu; nil until joined
	def    *election.Definition // guarded by mu; nil until the election is fetched
	roster *election.Roster     // guarded by mu; nil until a roster arrives
	conn   *grpc.ClientConn     // guarded by mu; opened on first use
	offset time.Duration        // guarded by mu; server clock minus ours
	closed bool                 // guarded by mu

	syncMu sync.Mutex // held by a running sync: one at a time

	jitterMu sync.Mutex
	jitter   *mathrand.Rand // guarded by jitterMu
}

// Open opens the device folder dir, creating it (mode 0700) and an empty
// device file if there are none. It fails with ErrInUse when another process
// has the folder open.
func Open(dir string, opt Options) (*Device, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("device folder: %w", err)
	}
	d := &Device{
		dir:   dir,
		log:   opt.Logger,
		now:   opt.Now,
		rand:  opt.Rand,
		dialF: opt.Dial,
		sopt:  opt.Sync.withDefaults(),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.rand == nil {
		d.rand = rand.Reader
	}
	if d.dialF == nil {
		d.dialF = client.Config.New
	}
	d.jitter = d.sopt.Jitter
	if d.jitter == nil {
		d.jitter = mathrand.New(mathrand.NewPCG(uint64(d.now().UnixNano()), 0x646f6f7273746570))
	}
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	d.st = st
	if err := d.load(); err != nil {
		st.close()
		return nil, err
	}
	return d, nil
}

// load reads the enrollment, key, clock and election from the folder.
func (d *Device) load() error {
	var (
		enr      Enrollment
		enrolled bool
		last     uint64
		si       syncInfo
		defRec   *doorstepv1.SignedRecord
		units    []election.Unit
	)
	err := d.st.read(func(r *rtx) error {
		var err error
		if enr, enrolled, err = r.enrollment(); err != nil {
			return err
		}
		if last, err = r.hlc(); err != nil {
			return err
		}
		if defRec, _, err = r.definition(); err != nil {
			return err
		}
		if si, err = r.syncInfo(); err != nil {
			return err
		}
		units, err = r.rosterUnits()
		return err
	})
	if err != nil {
		return fmt.Errorf("read device file: %w", err)
	}
	d.clock = hlc.New(d.now, last)
	if !enrolled {
		return nil
	}
	key, err := loadKey(filepath.Join(d.dir, keyFile))
	if err != nil {
		return fmt.Errorf("this device has joined election %s but %w", enr.ElectionID, err)
	}
	def, roster, err := decodeStoredElection(defRec, units)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.enr, d.key, d.def, d.roster = &enr, key, def, roster
	d.offset = time.Duration(si.ClockOffsetMS) * time.Millisecond
	d.mu.Unlock()
	return nil
}

// decodeStoredElection rebuilds the definition and roster from what a
// previous verification stored.
func decodeStoredElection(defRec *doorstepv1.SignedRecord, units []election.Unit) (*election.Definition, *election.Roster, error) {
	if defRec == nil {
		return nil, nil, nil
	}
	rec, err := signed.Decode(defRec.GetBody())
	if err != nil {
		return nil, nil, fmt.Errorf("stored definition: %w: %w", errCorrupt, err)
	}
	def, err := rules.Definition(rec.GetCommittee().GetDefineElection())
	if err != nil {
		return nil, nil, fmt.Errorf("stored definition: %w: %w", errCorrupt, err)
	}
	if len(units) == 0 {
		return def, nil, nil
	}
	roster, err := election.NewRoster(units)
	if err != nil {
		return nil, nil, fmt.Errorf("stored roster: %w: %w", errCorrupt, err)
	}
	return def, roster, nil
}

// Close closes the connection to the server, if any, and the device file.
// A background sync must have stopped first.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	conn := d.conn
	d.conn, d.closed = nil, true
	d.mu.Unlock()
	var errs []error
	if conn != nil {
		errs = append(errs, conn.Close())
	}
	errs = append(errs, d.st.close())
	return errors.Join(errs...)
}

// Dir is the device folder.
func (d *Device) Dir() string { return d.dir }

// Enrollment returns the enrollment, or ErrNotEnrolled.
func (d *Device) Enrollment() (Enrollment, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.enr == nil {
		return Enrollment{}, ErrNotEnrolled
	}
	return *d.enr, nil
}

// PublicKey is the device's public key, or nil before it joins.
func (d *Device) PublicKey() ed25519.PublicKey {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.key == nil {
		return nil
	}
	return d.key.Public().(ed25519.PublicKey)
}

// Election returns the verified definition and the roster (nil until the
// committee has imported one).
func (d *Device) Election() (*election.Definition, *election.Roster, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	switch {
	case d.enr == nil:
		return nil, nil, ErrNotEnrolled
	case d.def == nil:
		return nil, nil, ErrNoElection
	}
	return d.def, d.roster, nil
}

// Answer is the server's answer to one of this device's records.
type Answer struct {
	Seq    uint64
	Result *doorstepv1.RecordResult
}

// Status is what the device holds, for the canvasser and the committee.
type Status struct {
	Dir        string
	Enrolled   bool
	Enrollment Enrollment
	// Title is the election's title, once the device has the definition.
	Title       string
	RosterUnits int
	Opened      bool
	ClosedAt    time.Time
	// Records is how many records this device has made; Pending how many
	// still wait for the server's answer.
	Records int
	Pending int
	// Answered counts the server's answers by status.
	Answered map[doorstepv1.RecordStatus]int
	// Rejected lists the records the server rejected, with its reasons.
	Rejected    []Answer
	LastSync    time.Time
	LastAttempt time.Time
	LastError   string
	// ClockOffset is the server's clock minus this device's, measured at the
	// last sync; OffsetKnown is false before any.
	ClockOffset time.Duration
	OffsetKnown bool
	// Checkpoint is the latest signed checkpoint of the ballot log the
	// server returned, or nil.
	Checkpoint *doorstepv1.Checkpoint
}

// Status reads the device's state.
func (d *Device) Status() (Status, error) {
	s := Status{Dir: d.dir, Answered: make(map[doorstepv1.RecordStatus]int)}
	if enr, err := d.Enrollment(); err == nil {
		s.Enrolled, s.Enrollment = true, enr
	}
	if def, roster, err := d.Election(); err == nil {
		s.Title = def.Title
		if roster != nil {
			s.RosterUnits = len(roster.Units())
		}
	}
	err := d.st.read(func(r *rtx) error {
		head, err := r.chain()
		if err != nil {
			return err
		}
		s.Records = int(head.Seq)
		s.Pending = r.pendingCount()
		es, _, err := r.electionState()
		if err != nil {
			return err
		}
		s.Opened, s.ClosedAt = es.Opened, es.ClosedAt
		err = r.forEachResult(func(seq uint64, res *doorstepv1.RecordResult) error {
			s.Answered[res.GetStatus()]++
			if res.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
				s.Rejected = append(s.Rejected, Answer{Seq: seq, Result: res})
			}
			return nil
		})
		if err != nil {
			return err
		}
		si, err := r.syncInfo()
		if err != nil {
			return err
		}
		s.LastSync, s.LastAttempt, s.LastError = si.LastSync, si.LastAttempt, si.LastError
		s.ClockOffset, s.OffsetKnown = time.Duration(si.ClockOffsetMS)*time.Millisecond, si.OffsetKnown
		s.Checkpoint, err = r.checkpoint()
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("read device status: %w", err)
	}
	return s, nil
}

// Record returns this device's record with the given author_seq and the
// server's answer to it, if any.
func (d *Device) Record(seq uint64) (*doorstepv1.SignedRecord, *doorstepv1.RecordResult, error) {
	var (
		sr  *doorstepv1.SignedRecord
		res *doorstepv1.RecordResult
	)
	err := d.st.read(func(r *rtx) error {
		var ok bool
		var err error
		if sr, ok, err = r.record(seq); err != nil {
			return err
		}
		if !ok {
			return election.Errorf(election.CodeNotFound, "author_seq", "this device has no record %d", seq)
		}
		res, _, err = r.result(seq)
		return err
	})
	return sr, res, err
}

// Check runs bbolt's consistency check over the device file.
func (d *Device) Check() error {
	d.mu.RLock()
	closed := d.closed
	d.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return d.st.check()
}

// client returns the connection to the enrolled server, opening it once.
func (d *Device) client() (doorstepv1.SyncServiceClient, Enrollment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.enr == nil {
		return nil, Enrollment{}, ErrNotEnrolled
	}
	if d.conn == nil {
		conn, err := d.dialF(client.ForPin(d.enr.TLSPin), d.enr.Server)
		if err != nil {
			return nil, Enrollment{}, fmt.Errorf("connect to %s: %w", d.enr.Server, err)
		}
		d.conn = conn
	}
	return doorstepv1.NewSyncServiceClient(d.conn), *d.enr, nil
}

// callOpts returns the per-call credentials that sign a call with the
// device's key.
func (d *Device) callOpts() []grpc.CallOption {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return []grpc.CallOption{d.creds(d.enr.ElectionID, d.enr.DeviceID, d.key).CallOption()}
}
