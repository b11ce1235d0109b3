package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// The log is checked in two stages. Workers, one per core, do everything
// that needs no knowledge of earlier entries: the leaf hash, decoding the
// entry and the record body, the signature check (the dominant cost, made
// for a whole batch at once) and the ballot's marks. The replay then walks
// the entries in log order on one goroutine and makes every decision that
// depends on the log so far.
//
// A worker checks a signature with the author's key as it was announced by
// the earliest enrollment (or definition) any worker has decoded; the
// replay knows the authoritative key at that point in the log and checks
// again itself whenever the two differ, which happens only for a record in
// the same batch as, or before, its author's enrollment.

const batchSize = 256

// maxBatchHint bounds the buffer a batch starts with; a batch of larger
// entries grows its own.
const maxBatchHint = 4 << 20

// decoded is what a worker learns of one entry.
type decoded struct {
	raw      []byte
	leaf     tlog.Hash
	entry    *doorstepv1.LogEntry
	entryErr error
	rec      *doorstepv1.Record // decoded body, nil if it did not decode
	recErr   error
	bodyHash [32]byte
	receipt  string            // receipt code, ballots only
	key      ed25519.PublicKey // key the signature was checked with, nil if none
	sigOK    bool
	def      *election.Definition // definition the marks were read under
	marks    election.Marks
	invalid  bool
	marksErr error
}

type batch struct {
	first int64
	items []decoded
	ends  []int // end offset in buf of each item's bytes
	buf   []byte
	err   error // a framing error after the items: the file stops here
	done  chan struct{}
}

// keyring is the workers' view of authors' keys and the definition.
type keyring struct {
	mu   sync.RWMutex
	keys map[string]ed25519.PublicKey // guarded by mu
	def  atomic.Pointer[election.Definition]
}

func (k *keyring) get(id string) ed25519.PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[id]
}

// announce records the first key seen for an author; later ones are left
// to the replay to judge.
func (k *keyring) announce(id string, pub []byte) {
	if len(pub) != ed25519.PublicKeySize {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = make(map[string]ed25519.PublicKey)
	}
	if _, ok := k.keys[id]; !ok {
		k.keys[id] = bytes.Clone(pub)
	}
}

// work decodes and checks one entry in place, all but its signature.
func (k *keyring) work(d *decoded) {
	d.leaf = ballotlog.LeafHash(d.raw)
	d.entry, d.entryErr = ballotlog.DecodeEntry(d.raw)
	if d.entryErr != nil {
		return
	}
	if en := d.entry.GetEnrollment(); en != nil {
		k.announce(en.GetDeviceId(), en.GetDevicePublicKey())
		return
	}
	sr := d.entry.GetRecord()
	d.bodyHash = signed.BodyHash(sr.GetBody())
	d.rec, d.recErr = signed.Decode(sr.GetBody())
	if d.recErr != nil {
		return
	}
	author := d.rec.GetAuthorId()
	if pd := d.rec.GetCommittee().GetDefineElection(); pd != nil && author == election.CommitteeAuthor && d.rec.GetAuthorSeq() == 1 {
		// The definition is signed by the key it names.
		k.announce(author, pd.GetCommitteePublicKey())
	}
	// The signature is checked with the rest of the batch (verifyBatch).
	d.key = k.get(author)
	if b := d.rec.GetBallot(); b != nil {
		d.receipt = ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature())
		if def := k.def.Load(); def != nil {
			d.def = def
			d.marks, d.invalid, d.marksErr = def.Marks(rules.Selections(b.GetSelections()))
		}
	}
}

// verifyBatch checks together the signatures of the records whose
// author's key the worker knew, and sets their sigOK. sb is the worker's,
// reused from batch to batch.
func verifyBatch(sb *signed.Batch, items []decoded) {
	sb.Reset()
	for i := range items {
		if d := &items[i]; d.key != nil {
			sb.Add(d.key, d.entry.GetRecord())
		}
	}
	if sb.Len() == 0 {
		return
	}
	ok := sb.Verify()
	j := 0
	for i := range items {
		if d := &items[i]; d.key != nil {
			d.sigOK = ok[j]
			j++
		}
	}
}

// scan reads the log file, runs the workers, and hands each entry to
// visit in log order on the calling goroutine. A framing error is passed
// to frameErr after the entries before it. All goroutines have stopped
// when scan returns.
func scan(ctx context.Context, r io.Reader, keys *keyring, visit func(idx int64, d *decoded), frameErr func(error)) error {
	workers := max(runtime.GOMAXPROCS(0), 1)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	work := make(chan *batch, workers*2)
	order := make(chan *batch, workers*4)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(work)
		defer close(order)
		lr := newLogReader(r)
		last := 0 // bytes in the previous batch
		for eof := false; !eof; {
			// Size the buffer like the previous batch's, so it is not
			// grown (and copied) entry by entry.
			b := &batch{first: lr.n, done: make(chan struct{}), buf: make([]byte, 0, min(last+last/8, maxBatchHint))}
			for len(b.ends) < batchSize {
				var err error
				if b.buf, err = lr.next(b.buf); err != nil {
					if err != io.EOF {
						b.err = err
					}
					eof = true
					break
				}
				b.ends = append(b.ends, len(b.buf))
			}
			last = len(b.buf)
			b.items = make([]decoded, len(b.ends))
			start := 0
			for i, end := range b.ends {
				b.items[i].raw = b.buf[start:end:end]
				start = end
			}
			select {
			case order <- b:
			case <-ctx.Done():
				return
			}
			select {
			case work <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sb signed.Batch
			for b := range work {
				for i := range b.items {
					keys.work(&b.items[i])
				}
				verifyBatch(&sb, b.items)
				close(b.done)
			}
		}()
	}
	for b := range order {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		for i := range b.items {
			visit(b.first+int64(i), &b.items[i])
		}
		if b.err != nil {
			frameErr(b.err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return ctx.Err()
}
