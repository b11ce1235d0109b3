package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

// Format names this version of the election record layout; it is the
// manifest's "format" field.
const Format = "doorstep-record-v1"

// Files of an election record folder, relative to the folder.
const (
	ManifestFile      = "manifest.json"
	LogFile           = "log/entries.bin"
	CheckpointFile    = "checkpoint.txt"
	TallyFile         = "tally.json"
	ParticipationFile = "participation.csv"
	ResultsFile       = "results.csv"
	ContestedFile     = "contested.csv"
)

// MaxEntryBytes bounds one log entry in the log file: it is the largest
// entry a server logs (ballotlog.MaxEntryBytes), and a corrupt length
// cannot make a reader allocate more.
const MaxEntryBytes = ballotlog.MaxEntryBytes

// Manifest is manifest.json: what a person needs to know about the record
// at a glance. Everything in it is derived from the log and the checkpoint,
// and Verify checks that it says the same as they do.
type Manifest struct {
	Format       string `json:"format"`
	ElectionID   string `json:"election_id"`
	Title        string `json:"title"`
	RulesVersion string `json:"rules_version"`
	// ContestPolicy is "hold", "first" or "last".
	ContestPolicy string `json:"contest_policy"`
	// LogOrigin names the log in its checkpoints.
	LogOrigin string `json:"log_origin"`
	// LogSize is the number of entries, the size of the signed checkpoint.
	LogSize int64 `json:"log_size"`
	// ServerVerifierKey checks checkpoint.txt (note verifier key form).
	ServerVerifierKey string `json:"server_verifier_key"`
	// ServerFingerprint is the server key's fingerprint, for people to
	// compare with the one the committee announced.
	ServerFingerprint string `json:"server_fingerprint"`
	// CommitteePublicKey is the ed25519 key of the definition, base64.
	CommitteePublicKey string `json:"committee_public_key"`
	// RosterSHA256 is the hex roster hash the open record froze.
	RosterSHA256 string           `json:"roster_sha256"`
	RosterUnits  int              `json:"roster_units"`
	RosterArea   int64            `json:"roster_area_centi_m2"`
	RosterOwners int              `json:"roster_owners"`
	Closed       bool             `json:"closed"`
	Devices      []ManifestDevice `json:"devices"`
}

// ManifestDevice is one enrolled device.
type ManifestDevice struct {
	DeviceID string `json:"device_id"`
	// PublicKey is the ed25519 key, base64.
	PublicKey string `json:"public_key"`
	Label     string `json:"label"`
	// Entry is the log index of its enrollment.
	Entry int64 `json:"enrolled_at_entry"`
}

// ReadManifest reads and decodes dir's manifest.json. Unknown fields are
// refused: a newer format must change Format.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("election record %s: %w", dir, err)
	}
	m, err := decodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("election record %s: %s: %w", dir, ManifestFile, err)
	}
	return m, nil
}

func decodeManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a manifest: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a manifest: text after the JSON object")
	}
	if m.Format != Format {
		return nil, fmt.Errorf("format %q; this verifier reads %q", m.Format, Format)
	}
	return &m, nil
}

func (m *Manifest) encode() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // strings, integers and booleans only
	}
	return append(b, '\n')
}

// LogWriter writes log entries in the record's framing: each entry as a
// 4-byte big-endian length followed by the entry bytes, nothing else.
type LogWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

// NewLogWriter returns a LogWriter over w. Call Flush at the end.
func NewLogWriter(w io.Writer) *LogWriter {
	return &LogWriter{w: bufio.NewWriterSize(w, 1<<20)}
}

// Write appends one entry.
func (lw *LogWriter) Write(entry []byte) error {
	if lw.err != nil {
		return lw.err
	}
	if len(entry) > MaxEntryBytes {
		lw.err = fmt.Errorf("log entry %d is %d bytes; the record format allows %d", lw.n, len(entry), MaxEntryBytes)
		return lw.err
	}
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(entry)))
	if _, err := lw.w.Write(l[:]); err != nil {
		lw.err = err
		return err
	}
	if _, err := lw.w.Write(entry); err != nil {
		lw.err = err
		return err
	}
	lw.n++
	return nil
}

// Count is the number of entries written.
func (lw *LogWriter) Count() int64 { return lw.n }

// Flush writes what is buffered.
func (lw *LogWriter) Flush() error {
	if lw.err != nil {
		return lw.err
	}
	return lw.w.Flush()
}

// FrameError reports log file bytes that are not a sequence of frames.
type FrameError struct {
	Entry  int64 // number of the frame that is broken
	Offset int64 // its byte offset in the file
	Msg    string
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("%s: entry %d at byte %d: %s", LogFile, e.Entry, e.Offset, e.Msg)
}

// logReader reads frames one by one.
type logReader struct {
	r   *bufio.Reader
	n   int64
	off int64
}

func newLogReader(r io.Reader) *logReader {
	return &logReader{r: bufio.NewReaderSize(r, 256<<10)}
}

// next returns the next entry appended to buf, io.EOF at a clean end, or
// a *FrameError.
func (lr *logReader) next(buf []byte) ([]byte, error) {
	var l [4]byte
	k, err := io.ReadFull(lr.r, l[:])
	switch {
	case err == io.EOF:
		return buf, io.EOF
	case err != nil:
		return buf, &FrameError{Entry: lr.n, Offset: lr.off, Msg: fmt.Sprintf("the file ends inside a length prefix (%d of 4 bytes)", k)}
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > MaxEntryBytes {
		return buf, &FrameError{Entry: lr.n, Offset: lr.off, Msg: fmt.Sprintf("length %d is over the %d-byte limit: the file is damaged", n, MaxEntryBytes)}
	}
	// Grow with the bytes that actually arrive, so a damaged length costs
	// at most what the file holds.
	start := len(buf)
	for got := 0; got < int(n); {
		k := min(int(n)-got, 64<<10)
		at := len(buf)
		buf = append(buf, make([]byte, k)...)
		m, err := io.ReadFull(lr.r, buf[at:])
		got += m
		if err != nil {
			return buf[:start], &FrameError{Entry: lr.n, Offset: lr.off, Msg: fmt.Sprintf("the file ends after %d of the entry's %d bytes", got, n)}
		}
	}
	lr.n++
	lr.off += 4 + int64(n)
	return buf, nil
}

// ReadLog calls fn with each entry of a log file's framing, in order. The
// entry slice is reused after fn returns. A damaged file stops with a
// *FrameError.
func ReadLog(r io.Reader, fn func(idx int64, entry []byte) error) error {
	lr := newLogReader(r)
	var buf []byte
	for {
		idx := lr.n
		var err error
		buf, err = lr.next(buf[:0])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(idx, buf); err != nil {
			return err
		}
	}
}

// ParseVerifierKey reads a note verifier key
// "<name>+<hash>+<base64(0x01 ‖ ed25519 public key)>" and returns the
// name and the public key, after checking that the hash matches them.
func ParseVerifierKey(vkey string) (name string, pub ed25519.PublicKey, err error) {
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", nil, fmt.Errorf("server verifier key %q: %w", vkey, err)
	}
	// note.NewVerifier checked the form and the hash; only the key is left
	// to take out.
	name, rest, _ := strings.Cut(vkey, "+")
	_, b64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return "", nil, fmt.Errorf("server verifier key %q is not an ed25519 key", vkey)
	}
	pub = ed25519.PublicKey(raw[1:])
	// note.NewVerifier also takes upper-case hex and loose base64; SPEC 6.4
	// names one spelling of each key, so two spellings of the same key
	// cannot both stand in an election record.
	if canon, err := note.NewEd25519VerifierKey(name, pub); err != nil || canon != vkey {
		return "", nil, fmt.Errorf("server verifier key %q is not written as SPEC 6.4 says (key hash in lower-case hex, then standard base64); the same key written so is %q", vkey, canon)
	}
	return name, pub, nil
}

// errStop ends a ReadLog walk early.
var errStop = errors.New("stop")

// ReadEntry returns entry idx of the record in dir.
func ReadEntry(dir string, idx int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(LogFile)))
	if err != nil {
		return nil, fmt.Errorf("election record: %w", err)
	}
	defer f.Close()
	var out []byte
	err = ReadLog(f, func(i int64, entry []byte) error {
		if i == idx {
			out = bytes.Clone(entry)
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if out == nil {
		return nil, fmt.Errorf("election record %s has no entry %d", dir, idx)
	}
	return out, nil
}
