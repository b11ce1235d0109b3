package store_test

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/store"
	"github.com/doorstep-vote/doorstep/internal/tally"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
	"github.com/doorstep-vote/doorstep/internal/tallyd/tallydtest"
)

// failed returns the findings that found problems, as "election check".
func failed(fs []store.Finding) map[string][]string {
	out := map[string][]string{}
	for _, f := range fs {
		if !f.OK() {
			out[strings.TrimSpace(f.Election+" "+f.Check)] = f.Problems
		}
	}
	return out
}

// cleanFile runs tallydtest's closed election (superseded, double,
// contested and settled units, a split owner settled by the committee, a
// rejected record) on a tallyd, stops it and returns its data file.
func cleanFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	r := tallydtest.Start(t, dir)
	if err := r.Server.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, tallyd.DBFile)
}

// copyFile copies the data file to a fresh folder, so each case damages
// its own.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "tally.db")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// tamper changes the test election's bucket in a closed data file, as a
// disk or a hand with a hex editor would: nothing else is kept in step.
func tamper(t *testing.T, path string, fn func(eb *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return fn(tx.Bucket([]byte("elections")).Bucket([]byte(tallydtest.ElectionID)))
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

func key(i int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

// flip returns a copy of v with byte i inverted.
func flip(v []byte, i int) []byte {
	out := append([]byte(nil), v...)
	out[i] ^= 0xff
	return out
}

func TestCheckFileClean(t *testing.T) {
	findings, err := store.CheckFile(cleanFile(t))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{}
	for _, f := range findings {
		checks[strings.TrimSpace(f.Election+" "+f.Check)] = true
		if !f.OK() {
			t.Errorf("%s %s: %q", f.Election, f.Check, f.Problems)
		} else if f.Summary == "" {
			t.Errorf("%s %s passed with no summary", f.Election, f.Check)
		}
	}
	e := tallydtest.ElectionID + " "
	for _, want := range []string{"pages", "schema", e + "schema", e + "log", e + "root", e + "records", e + "outcomes", e + "turnout", e + "owners", e + "totals", e + "devices"} {
		if !checks[want] {
			t.Errorf("no %q check in %d findings", want, len(findings))
		}
	}
}

// TestCheckFileNamesDamage damages one thing at a time in a copy of a
// clean file and expects the check that compares it to say so, naming the
// bucket.
func TestCheckFileNamesDamage(t *testing.T) {
	clean := cleanFile(t)
	def, err := rules.Definition(tallydtest.Definition(tallydtest.CommitteeKey().Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	e := tallydtest.ElectionID + " "
	cases := []struct {
		name string
		fn   func(eb *bolt.Bucket) error
		// want maps a check to words one of its problems must hold.
		want map[string]string
	}{
		{"a byte of a log entry", func(eb *bolt.Bucket) error {
			lb := eb.Bucket([]byte("log"))
			v := lb.Get(key(7))
			return lb.Put(key(7), flip(v, len(v)/2))
		}, map[string]string{e + "log": "log entry 7 (bucket log) does not hash to the leaf bucket loghash holds", e + "root": "is not the root"}},
		{"the stored root", func(eb *bolt.Bucket) error {
			info := eb.Bucket([]byte("info"))
			return info.Put([]byte("log_root"), flip(info.Get([]byte("log_root")), 0))
		}, map[string]string{e + "root": "info log_root"}},
		// Storage index 2 is the node over entries 0 and 1: proofs for them
		// use it, the root of the whole log does not.
		{"a tree hash", func(eb *bolt.Bucket) error {
			hb := eb.Bucket([]byte("loghash"))
			return hb.Put(key(2), flip(hb.Get(key(2)), 3))
		}, map[string]string{e + "log": "bucket loghash: 1 of the tree hashes that log entry 1 completes"}},
		{"the totals", func(eb *bolt.Bucket) error {
			info := eb.Bucket([]byte("info"))
			tot := tally.NewTotals(def)
			if err := tot.UnmarshalBinary(info.Get([]byte("totals"))); err != nil {
				return err
			}
			tot.Add(tally.Contribution{Items: []tally.ItemContribution{{Yes: tally.Count{Area: 100, Headcount: 1}}, {}, {}}})
			v, err := tot.MarshalBinary()
			if err != nil {
				return err
			}
			return info.Put([]byte("totals"), v)
		}, map[string]string{e + "totals": "info totals differ from a recount of the stored ballots: item rules yes"}},
		{"a device's marks", func(eb *bolt.Bucket) error {
			db := eb.Bucket([]byte("devices"))
			c := db.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if string(k) == election.CommitteeAuthor {
					continue
				}
				// The device encoding (encoding.go): key 32, revoked 1,
				// revoked after 8, contiguous 8, its hash 32, max 8.
				v = append([]byte(nil), v...)
				binary.BigEndian.PutUint64(v[81:], binary.BigEndian.Uint64(v[81:])+1)
				return db.Put(k, v)
			}
			return fmt.Errorf("no device")
		}, map[string]string{e + "devices": "bucket devices says"}},
		{"a unit's outcome", func(eb *bolt.Bucket) error {
			ob := eb.Bucket([]byte("outcome"))
			return ob.Put([]byte("1-1-101"), append([]byte(nil), ob.Get([]byte("1-2-201"))...))
		}, map[string]string{e + "outcomes": "unit 1-1-101: bucket outcome says"}},
		{"a stored ballot", func(eb *bolt.Bucket) error {
			bb := eb.Bucket([]byte("ballots"))
			k, v := bb.Cursor().First()
			var b tally.Ballot
			if err := b.UnmarshalBinary(v); err != nil {
				return err
			}
			b.HLC++
			nv, err := b.MarshalBinary()
			if err != nil {
				return err
			}
			return bb.Put(append([]byte(nil), k...), nv)
		}, map[string]string{e + "records": "(bucket ballots) differs from log entry"}},
		{"an owner's aggregate", func(eb *bolt.Bucket) error {
			return eb.Bucket([]byte("ownerstate")).Delete([]byte("owner-wang"))
		}, map[string]string{e + "owners": "owner owner-wang: bucket ownerstate differs"}},
		{"a building's counters", func(eb *bolt.Bucket) error {
			bb := eb.Bucket([]byte("buildings"))
			k, v := bb.Cursor().First()
			if k == nil {
				return fmt.Errorf("no building counters")
			}
			// The turnout encoding (encoding.go): units 8, area 8,
			// counted 8, area counted 8, held 8.
			v = append([]byte(nil), v...)
			binary.BigEndian.PutUint64(v[16:], binary.BigEndian.Uint64(v[16:])+1)
			return bb.Put(append([]byte(nil), k...), v)
		}, map[string]string{e + "turnout": "bucket buildings says"}},
		{"a building's counters missing", func(eb *bolt.Bucket) error {
			bb := eb.Bucket([]byte("buildings"))
			k, _ := bb.Cursor().First()
			if k == nil {
				return fmt.Errorf("no building counters")
			}
			return bb.Delete(append([]byte(nil), k...))
		}, map[string]string{e + "turnout": "but no counters in bucket buildings"}},
		{"a missing log entry", func(eb *bolt.Bucket) error {
			return eb.Bucket([]byte("log")).Delete(key(3))
		}, map[string]string{e + "log": "log entry 3 is missing from bucket log", e + "root": "cannot be recomputed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := copyFile(t, clean)
			tamper(t, path, c.fn)
			findings, err := store.CheckFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := failed(findings)
			for check, words := range c.want {
				if !strings.Contains(strings.Join(got[check], "\n"), words) {
					t.Errorf("check %q: problems %q; want one saying %q", check, got[check], words)
				}
			}
			if got["pages"] != nil {
				t.Errorf("bbolt's check fails on a file changed only through bbolt: %q", got["pages"])
			}
		})
	}
}

// TestCheckFileNamesPageDamage damages a bbolt page in place: bbolt's own
// check names it, and the rest of the check still runs to the end.
func TestCheckFileNamesPageDamage(t *testing.T) {
	path := copyFile(t, cleanFile(t))
	damagePage(t, path)
	findings, err := store.CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := failed(findings)
	if len(got["pages"]) == 0 {
		t.Errorf("bbolt's check found nothing on a damaged page; failed checks: %q", got)
	}
	if last := findings[len(findings)-1]; last.Check != "devices" {
		t.Errorf("the check stopped at %s %s; want it to run to the devices check", last.Election, last.Check)
	}
	for k, v := range got {
		t.Logf("%s: %q", k, v)
	}
}

// TestStoreCheckReadsToTheEnd: Store.Check on a damaged file reports it
// and leaves no goroutine behind (bbolt's checker stops only once every
// error it found is read).
func TestStoreCheckReadsToTheEnd(t *testing.T) {
	path := copyFile(t, cleanFile(t))
	damagePage(t, path)
	before := runtime.NumGoroutine()
	s, err := store.Open(context.Background(), store.Config{Path: path, Signer: ballotlog.NewKeySigner(signedtest.NewKey("server")), Origin: "test", NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Check(); err == nil {
			t.Error("Store.Check passes a damaged page")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Store.Check and Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// damagePage swaps the page type (branch or leaf) of the root page of the
// log's bucket, in place: its elements are then read as the other kind.
func damagePage(t *testing.T, path string) {
	t.Helper()
	var root uint64
	var pageSize int
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket([]byte("elections")).Bucket([]byte(tallydtest.ElectionID)).Bucket([]byte("log")).Root())
		pageSize = db.Info().PageSize
		return nil
	})
	db.Close()
	if err != nil || root == 0 {
		t.Fatalf("the log bucket has no page of its own (root %d): %v", root, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The page header: id 8 bytes, flags 2, count 2, overflow 4.
	off := int(root) * pageSize
	const branch, leaf = 0x01, 0x02
	switch binary.LittleEndian.Uint16(b[off+8:]) {
	case branch:
		binary.LittleEndian.PutUint16(b[off+8:], leaf)
	case leaf:
		binary.LittleEndian.PutUint16(b[off+8:], branch)
	default:
		t.Fatalf("page %d is neither branch nor leaf", root)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckSnapshotRandomElections: on stores fed random elections
// (revisions, double visits, contested units, settlements), every check
// passes: the check has no false alarms where the store is sound.
func TestCheckSnapshotRandomElections(t *testing.T) {
	seeds := 30
	if testing.Short() {
		seeds = 8
	}
	policies := []doorstepv1.ContestPolicy{doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD, doorstepv1.ContestPolicy_CONTEST_POLICY_FIRST, doorstepv1.ContestPolicy_CONTEST_POLICY_LAST}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			sc, com, devs := randomScenario(t, seed)
			s := openStore(t, t.TempDir())
			setup(t, s, com, sc.units, devs, policies[seed%3])
			sc.fill(t, seed, com, devs)
			ctx := context.Background()
			for _, sr := range sc.device {
				if _, _, err := s.Push(ctx, eid, []*doorstepv1.SignedRecord{sr}); err != nil {
					t.Fatal(err)
				}
			}
			if len(sc.committee) > 0 {
				if _, _, err := s.SubmitCommittee(ctx, eid, sc.committee); err != nil {
					t.Fatal(err)
				}
			}
			err := s.Snapshot(ctx, func(sn *store.Snapshot) error {
				for _, f := range sn.Check() {
					if !f.OK() {
						t.Errorf("%s %s: %q", f.Election, f.Check, f.Problems)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckFileInUse(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir)
	if _, err := store.CheckFile(filepath.Join(dir, "tally.db")); !errors.Is(err, store.ErrInUse) {
		t.Errorf("CheckFile of an open store: %v; want ErrInUse", err)
	}
	if _, err := store.CheckFile(filepath.Join(dir, "none.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CheckFile of no file: %v; want not exist", err)
	}
}
