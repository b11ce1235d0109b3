package audit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/doorstep-vote/doorstep/internal/audit"
)

// FuzzReadLog: any bytes either read as frames that write back to the
// same bytes, or stop with a FrameError; never a panic or a huge
// allocation.
func FuzzReadLog(f *testing.F) {
	f.Add(readVectorFile(f, audit.LogFile))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add(binary.BigEndian.AppendUint32(nil, 3))
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf bytes.Buffer
		w := audit.NewLogWriter(&buf)
		err := audit.ReadLog(bytes.NewReader(data), func(_ int64, e []byte) error { return w.Write(e) })
		if err != nil {
			var fe *audit.FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("ReadLog error %v is not a FrameError", err)
			}
			return
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("frames written back differ from what was read")
		}
	})
}

// FuzzParseVerifierKey: a key that parses names its own public key.
func FuzzParseVerifierKey(f *testing.F) {
	m, err := audit.ReadManifest(vectorDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{m.ServerVerifierKey, m.ServerVerifierKey[:20], "a+00000000+AQ==", "", "+++", "x+zzzzzzzz+AQAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, vkey string) {
		name, pub, err := audit.ParseVerifierKey(vkey)
		if err != nil {
			return
		}
		again, err := note.NewEd25519VerifierKey(name, pub)
		if err != nil || again != vkey {
			t.Fatalf("ParseVerifierKey(%q) = %q, %x; which make %q, %v", vkey, name, pub, again, err)
		}
	})
}

// FuzzVerifyLog: whatever the log file holds, Verify reports rather than
// fails or panics, and only the original bytes verify.
func FuzzVerifyLog(f *testing.F) {
	orig := readVectorFile(f, audit.LogFile)
	f.Add(orig)
	f.Add(orig[:len(orig)/2])
	flipped := bytes.Clone(orig)
	flipped[len(flipped)/3] ^= 0x20
	f.Add(flipped)
	f.Add(append(bytes.Clone(orig), 0, 0, 0, 1, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), "record")
		copyTree(t, vectorDir, dir)
		if err := os.WriteFile(filepath.Join(dir, audit.LogFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(context.Background(), dir)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if rep.OK() != bytes.Equal(data, orig) {
			t.Fatalf("Verify OK = %v for a log that is %s the original:\n%s", rep.OK(), map[bool]string{true: "", false: "not"}[bytes.Equal(data, orig)], findings(rep))
		}
	})
}

func readVectorFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, filepath.FromSlash(name)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
