package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// Discrepancy is one thing the verifier found wrong, located as precisely
// as the record allows.
type Discrepancy struct {
	// Entry is the log index the finding is about, or -1.
	Entry int64
	// Author is the device id or "committee" concerned, if any; Seq its
	// record number (author_seq), if any.
	Author string
	Seq    uint64
	// Field names what is wrong: a record field, a file, "chain", or a
	// tally path such as items[rules].yes.area.
	Field string
	Msg   string
}

func (d Discrepancy) String() string {
	var b strings.Builder
	if d.Entry >= 0 {
		fmt.Fprintf(&b, "entry %d", d.Entry)
	}
	if d.Author != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("(" + d.Author)
		if d.Seq > 0 {
			fmt.Fprintf(&b, " record %d", d.Seq)
		}
		b.WriteByte(')')
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if d.Field != "" {
		b.WriteString(d.Field + ": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Report is what Verify found.
type Report struct {
	ElectionID  string
	Title       string
	LogOrigin   string
	Fingerprint string
	// CheckpointSize and Root are what the signed checkpoint vouches for
	// (zero when it did not verify).
	CheckpointSize int64
	Root           tlog.Hash
	Stats          Stats
	Devices        int
	RosterUnits    int
	// Tally is the recomputed tally, nil when the log does not allow one.
	Tally *tally.Result
	// TallyMatches is true when tally.json is byte for byte the
	// recomputed tally's canonical JSON.
	TallyMatches  bool
	Discrepancies []Discrepancy
	// Omitted counts discrepancies beyond the ones listed.
	Omitted int
}

// OK reports whether the record verified with no discrepancy at all.
func (r *Report) OK() bool { return len(r.Discrepancies) == 0 && r.Omitted == 0 }

// checked is one pass over a log file.
type checked struct {
	r        *replay
	tree     ballotlog.Builder
	tally    *tally.Result
	outcomes map[string]tally.UnitOutcome
}

// checkLog runs the pipeline and the replay over the log file at path.
// electionID is the election the entries must be for ("" takes entry 0's);
// sizeHint the expected number of entries.
func checkLog(ctx context.Context, path, electionID string, sizeHint int64, watch func(int64, *decoded, bool)) (*checked, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("election record: %w", err)
	}
	defer f.Close()
	// The hint sizes tables up front; it comes from the manifest, so it is
	// bounded by what the file can hold (a frame is at least 4 bytes, an
	// entry rarely under 60).
	if fi, err := f.Stat(); err == nil {
		sizeHint = min(sizeHint, fi.Size()/64)
	}
	c := &checked{}
	keys := &keyring{}
	c.r = newReplay(electionID, keys, sizeHint)
	c.r.watch = watch
	c.tree.Grow(sizeHint)
	var treeErr error
	err = scan(ctx, f, keys, func(idx int64, d *decoded) {
		if _, err := c.tree.AppendLeafHash(d.leaf); err != nil && treeErr == nil {
			treeErr = err
		}
		c.r.entry(idx, d)
	}, func(err error) {
		var fe *FrameError
		if errors.As(err, &fe) {
			c.r.add(Discrepancy{Entry: fe.Entry, Field: LogFile, Msg: fmt.Sprintf("at byte %d: %s; nothing after it can be read", fe.Offset, fe.Msg)})
			return
		}
		c.r.add(Discrepancy{Entry: -1, Field: LogFile, Msg: err.Error()})
	})
	if err != nil {
		return nil, err
	}
	if treeErr != nil {
		return nil, fmt.Errorf("rebuild the Merkle tree: %w", treeErr)
	}
	c.r.finish()
	if c.r.def != nil && c.r.roster != nil {
		res, outcomes := tally.Compute(c.r.def, c.r.roster, c.r.ballots, c.r.unitDecisions, c.r.ownerDecisions)
		c.tally, c.outcomes = &res, outcomes
		// Nothing counts after a certification, so the final tally is the
		// one the committee certified.
		if h := sha256.Sum256(res.CanonicalJSON()); c.r.certified != nil && !bytes.Equal(h[:], c.r.certified) {
			c.r.findf(int64(c.r.certifiedAt.GetResult().GetLogIndex()), election.CommitteeAuthor, 0, "certify.tally_sha256",
				"the committee certified tally sha256 %x, but the log's final tally has sha256 %x", c.r.certified, h[:])
		}
	}
	return c, nil
}

// Verify checks the election record in dir using nothing but its files:
// the checkpoint's signature by the key in the manifest (and that key's
// fingerprint), the Merkle root of the log against it, every entry,
// signature and author chain, the server's decisions re-made under the
// rules, the tally recomputed and compared with tally.json byte for byte,
// and the manifest and CSVs against what the log gives. Discrepancies go
// in the Report; the error is for a folder that cannot be read at all.
func Verify(ctx context.Context, dir string) (*Report, error) {
	return verify(ctx, dir, nil, nil)
}

// verify is Verify with a watch on each record entry, and the recomputed
// unit outcomes stored in outcomes if it is not nil.
func verify(ctx context.Context, dir string, watch func(int64, *decoded, bool), outcomes *map[string]tally.UnitOutcome) (*Report, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	note, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	if err != nil {
		return nil, fmt.Errorf("election record %s: %w", dir, err)
	}
	published, err := os.ReadFile(filepath.Join(dir, TallyFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("election record %s: %w", dir, err)
	}
	c, err := checkLog(ctx, filepath.Join(dir, filepath.FromSlash(LogFile)), m.ElectionID, m.LogSize, watch)
	if err != nil {
		return nil, err
	}
	if outcomes != nil {
		*outcomes = c.outcomes
	}
	rep := assemble(m, string(note), published, c)
	csvs := csvFiles(c, published)
	for _, name := range slices.Sorted(maps.Keys(csvs)) {
		want := csvs[name]
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			rep.add(Discrepancy{Entry: -1, Field: name, Msg: fmt.Sprintf("cannot be read (%v); it should hold what the log gives", err)})
			continue
		}
		if line := firstDiffLine(got, want); line > 0 {
			rep.add(Discrepancy{Entry: -1, Field: name, Msg: fmt.Sprintf("line %d differs from what the log and tally.json give", line)})
		}
	}
	return rep, nil
}

func (r *Report) add(d Discrepancy) {
	if len(r.Discrepancies) >= maxFindings {
		r.Omitted++
		return
	}
	r.Discrepancies = append(r.Discrepancies, d)
}

// assemble checks what surrounds the log (checkpoint, manifest, tally)
// against one pass over it and gathers everything in a Report.
func assemble(m *Manifest, note string, published []byte, c *checked) *Report {
	rep := &Report{ElectionID: m.ElectionID, Title: m.Title, LogOrigin: m.LogOrigin, Fingerprint: m.ServerFingerprint,
		Stats: c.r.stats, Devices: len(c.r.devices)}
	if c.r.roster != nil {
		rep.RosterUnits = len(c.r.roster.Units())
	}
	general := func(field, format string, args ...any) {
		rep.add(Discrepancy{Entry: -1, Field: field, Msg: fmt.Sprintf(format, args...)})
	}

	// The anchor: the server's key, as the manifest states it.
	name, pub, err := ParseVerifierKey(m.ServerVerifierKey)
	switch {
	case err != nil:
		general(ManifestFile+" server_verifier_key", "%v", err)
	case ballotlog.Fingerprint(pub) != m.ServerFingerprint:
		general(ManifestFile+" server_fingerprint", "is %s, but the verifier key's public key has fingerprint %s", m.ServerFingerprint, ballotlog.Fingerprint(pub))
	case name != m.LogOrigin:
		general(ManifestFile+" log_origin", "is %q, but the verifier key is for log %q", m.LogOrigin, name)
	}
	n := c.tree.Size()
	if origin, size, root, err := ballotlog.OpenCheckpoint(note, m.ServerVerifierKey); err != nil {
		general(CheckpointFile, "does not verify with the server key in the manifest: %v", err)
	} else {
		rep.CheckpointSize, rep.Root = size, root
		if origin != m.LogOrigin {
			general(CheckpointFile, "is for log %q, not %q", origin, m.LogOrigin)
		}
		if n != size {
			general(LogFile, "holds %d entries; the signed checkpoint is for %d", n, size)
		}
		if n >= size {
			got, err := c.tree.TreeHash(size)
			if err == nil && got != root {
				general(CheckpointFile, "the Merkle root of the log's first %d entries is %v, but the server signed %v: the log was altered", size, got, root)
			}
		}
	}

	for _, d := range c.r.findings {
		rep.add(d)
	}
	rep.Omitted += c.r.omitted

	// The manifest must say what the log says.
	want := buildManifest(c, m.ServerVerifierKey, m.ServerFingerprint, m.LogOrigin, n)
	for _, d := range diffFields(flattenValue(want), flattenValue(m)) {
		general(ManifestFile+" "+d.path, "says %s; the log gives %s", d.got, d.want)
	}
	if c.r.def != nil {
		rep.Title = c.r.def.Title
	}

	// The tally.
	switch {
	case c.tally == nil:
		if c.r.def != nil {
			general(TallyFile, "cannot be recomputed: the log never opens the election with a roster")
		}
	case published == nil:
		rep.Tally = c.tally
		general(TallyFile, "is missing; the recomputed tally is in this report")
	default:
		rep.Tally = c.tally
		ds := diffTally(published, c.tally)
		rep.TallyMatches = len(ds) == 0
		for _, d := range ds {
			rep.add(d)
		}
	}
	return rep
}

// buildManifest states what the log says, for Export to write and Verify
// to compare.
func buildManifest(c *checked, vkey, fingerprint, origin string, size int64) *Manifest {
	m := &Manifest{
		Format:            Format,
		ElectionID:        c.r.electionID,
		LogOrigin:         origin,
		LogSize:           size,
		ServerVerifierKey: vkey,
		ServerFingerprint: fingerprint,
		Closed:            c.r.state >= rules.StateClosed,
		Devices:           []ManifestDevice{},
	}
	if d := c.r.def; d != nil {
		m.Title, m.RulesVersion = d.Title, d.RulesVersion
		m.ContestPolicy = policyName(d.Policy)
		m.CommitteePublicKey = base64.StdEncoding.EncodeToString(d.CommitteeKey)
	}
	if c.r.openHash != nil {
		m.RosterSHA256 = hex.EncodeToString(c.r.openHash)
	}
	if ro := c.r.roster; ro != nil {
		m.RosterUnits, m.RosterArea, m.RosterOwners = len(ro.Units()), ro.TotalArea(), ro.Headcount()
	}
	for _, a := range c.r.devices {
		m.Devices = append(m.Devices, ManifestDevice{DeviceID: a.id, PublicKey: base64.StdEncoding.EncodeToString(a.pub), Label: a.label, Entry: a.entry})
	}
	return m
}

func policyName(p election.Policy) string {
	switch p {
	case election.PolicyFirst:
		return "first"
	case election.PolicyLast:
		return "last"
	}
	return "hold"
}
