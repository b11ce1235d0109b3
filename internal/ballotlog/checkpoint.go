package ballotlog

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
)

// Errors from [OpenCheckpoint] and [VerifyCheckpoint], wrapped with detail.
var (
	// ErrMalformedCheckpoint: the text is not a signed C2SP checkpoint, or
	// the verifier key is not a note verifier key.
	ErrMalformedCheckpoint = errors.New("malformed ballot log checkpoint")
	// ErrUnknownKey: the checkpoint is not signed by the expected key.
	ErrUnknownKey = errors.New("ballot log checkpoint not signed by the expected server key")
	// ErrBadSignature: the expected key's signature does not match the text;
	// the checkpoint was altered after signing.
	ErrBadSignature = errors.New("ballot log checkpoint signature does not match its text")
	// ErrWrongOrigin: validly signed, but for a different log.
	ErrWrongOrigin = errors.New("ballot log checkpoint is for a different log")
)

// treeHeader is the first line of tlog's go.sum tree note. A C2SP checkpoint
// is that note with the origin line in its place, so the body is formatted
// and parsed by tlog.FormatTree and tlog.ParseTree with this line swapped.
var treeHeader = func() string {
	line, _, _ := strings.Cut(string(tlog.FormatTree(tlog.Tree{})), "\n")
	return line + "\n"
}()

// Signer signs checkpoints of one ballot log with the server's key. Its
// methods are safe for concurrent use.
type Signer struct {
	origin string
	vkey   string
	signer note.Signer
}

// NewSigner returns a Signer for the log named origin. The origin is the
// first line of every checkpoint and the signature's key name; it must be
// non-empty UTF-8 without spaces or '+', e.g. "vote.example.org/estate-2026".
func NewSigner(origin string, key ed25519.PrivateKey) (*Signer, error) {
	if err := checkOrigin(origin); err != nil {
		return nil, err
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("checkpoint signer: private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	pub := key.Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer: %w", err)
	}
	return &Signer{
		origin: origin,
		vkey:   vkey,
		signer: ed25519NoteSigner{name: origin, hash: v.KeyHash(), key: key},
	}, nil
}

// Origin is the log's name, the first line of each checkpoint.
func (s *Signer) Origin() string { return s.origin }

// VerifierKey is the note verifier key to publish in the election record
// and give to devices: "<origin>+<key hash, 8 hex digits>+<base64 of 0x01
// then the 32-byte public key>", the form note.NewVerifier reads.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign returns the signed checkpoint for the log of size entries with the
// given root.
func (s *Signer) Sign(size int64, root tlog.Hash) (*doorstepv1.Checkpoint, error) {
	if size < 0 {
		return nil, fmt.Errorf("sign checkpoint: negative log size %d", size)
	}
	tree := tlog.FormatTree(tlog.Tree{N: size, Hash: root})
	text := s.origin + "\n" + string(tree[len(treeHeader):])
	signed, err := note.Sign(&note.Note{Text: text}, s.signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint of size %d: %w", size, err)
	}
	return &doorstepv1.Checkpoint{
		Origin:     s.origin,
		Size:       uint64(size),
		RootHash:   bytes.Clone(root[:]),
		SignedNote: string(signed),
	}, nil
}

// ed25519NoteSigner is a note.Signer over an ed25519.PrivateKey held in
// memory, equivalent to note.NewSigner with the "PRIVATE+KEY+…" encoding of
// the same key, without putting the key into a string.
type ed25519NoteSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func (s ed25519NoteSigner) Name() string    { return s.name }
func (s ed25519NoteSigner) KeyHash() uint32 { return s.hash }
func (s ed25519NoteSigner) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.key, msg), nil
}

// OpenCheckpoint verifies signedNote with verifierKey (as from
// [Signer.VerifierKey]) and returns what it vouches for. It fails with an
// error wrapping [ErrMalformedCheckpoint], [ErrUnknownKey] (signed by some
// other key), [ErrBadSignature] (altered after signing) or [ErrWrongOrigin]
// (signed by this key for another log). Lines after the root, C2SP extension
// lines, are covered by the signature and otherwise ignored.
func OpenCheckpoint(signedNote string, verifierKey string) (origin string, size int64, root tlog.Hash, err error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return "", 0, tlog.Hash{}, fmt.Errorf("%w: verifier key %q: %w", ErrMalformedCheckpoint, verifierKey, err)
	}
	n, err := note.Open([]byte(signedNote), note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return "", 0, tlog.Hash{}, fmt.Errorf("%w %s: signed only by %s",
				ErrUnknownKey, verifierKey, signerNames(unverified.Note.UnverifiedSigs))
		case errors.As(err, &invalid):
			return "", 0, tlog.Hash{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
		default:
			return "", 0, tlog.Hash{}, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
		}
	}
	origin, body, _ := strings.Cut(n.Text, "\n")
	if origin != v.Name() {
		return "", 0, tlog.Hash{}, fmt.Errorf("%w: it names log %q, the key is for log %q", ErrWrongOrigin, origin, v.Name())
	}
	tree, err := tlog.ParseTree([]byte(treeHeader + body))
	if err != nil {
		return "", 0, tlog.Hash{}, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	return origin, tree.N, tree.Hash, nil
}

// VerifyCheckpoint opens c.SignedNote as [OpenCheckpoint] does and checks
// that c's plain fields say the same as the signed text, so a caller may
// use either. It returns the verified tree.
func VerifyCheckpoint(c *doorstepv1.Checkpoint, verifierKey string) (tlog.Tree, error) {
	if c == nil {
		return tlog.Tree{}, fmt.Errorf("%w: no checkpoint", ErrMalformedCheckpoint)
	}
	origin, size, root, err := OpenCheckpoint(c.GetSignedNote(), verifierKey)
	if err != nil {
		return tlog.Tree{}, err
	}
	if c.GetOrigin() != origin || c.GetSize() != uint64(size) || !bytes.Equal(c.GetRootHash(), root[:]) {
		return tlog.Tree{}, fmt.Errorf("%w: its fields (origin %q, size %d, root %x) differ from its signed text (origin %q, size %d, root %x)",
			ErrMalformedCheckpoint, c.GetOrigin(), c.GetSize(), c.GetRootHash(), origin, size, root[:])
	}
	return tlog.Tree{N: size, Hash: root}, nil
}

func signerNames(sigs []note.Signature) string {
	if len(sigs) == 0 {
		return "nobody"
	}
	names := make([]string, len(sigs))
	for i, s := range sigs {
		names[i] = fmt.Sprintf("%s+%08x", s.Name, s.Hash)
	}
	return strings.Join(names, ", ")
}

func checkOrigin(origin string) error {
	switch {
	case origin == "":
		return errors.New("checkpoint origin is empty; name the log, e.g. vote.example.org/estate-2026")
	case !utf8.ValidString(origin):
		return fmt.Errorf("checkpoint origin %q is not valid UTF-8", origin)
	case strings.IndexFunc(origin, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("checkpoint origin %q contains a space or control character", origin)
	case strings.Contains(origin, "+"):
		return fmt.Errorf("checkpoint origin %q contains '+', which note key names cannot hold", origin)
	}
	return nil
}

// CheckpointSigner signs the checkpoints of every log a server keeps. The
// store is given one, never the server's private key: only the signer
// holds it.
type CheckpointSigner interface {
	// PublicKey is the key checkpoints verify with.
	PublicKey() ed25519.PublicKey
	// Sign signs the checkpoint of the log named origin at size entries
	// with the given root.
	Sign(origin string, size int64, root tlog.Hash) (*doorstepv1.Checkpoint, error)
	// VerifierKey is the note verifier key of the log named origin.
	VerifierKey(origin string) (string, error)
}

// KeySigner is a CheckpointSigner over a private key held in memory. It is
// safe for concurrent use.
type KeySigner struct {
	key ed25519.PrivateKey

	mu      sync.Mutex
	signers map[string]*Signer // guarded by mu: by origin
}

// NewKeySigner returns a CheckpointSigner for key; a key of the wrong size
// fails every Sign.
func NewKeySigner(key ed25519.PrivateKey) *KeySigner {
	return &KeySigner{key: key, signers: make(map[string]*Signer)}
}

// PublicKey implements CheckpointSigner.
func (k *KeySigner) PublicKey() ed25519.PublicKey {
	if len(k.key) != ed25519.PrivateKeySize {
		return nil
	}
	return k.key.Public().(ed25519.PublicKey)
}

func (k *KeySigner) signer(origin string) (*Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.signers[origin]; s != nil {
		return s, nil
	}
	s, err := NewSigner(origin, k.key)
	if err != nil {
		return nil, err
	}
	k.signers[origin] = s
	return s, nil
}

// Sign implements CheckpointSigner.
func (k *KeySigner) Sign(origin string, size int64, root tlog.Hash) (*doorstepv1.Checkpoint, error) {
	s, err := k.signer(origin)
	if err != nil {
		return nil, err
	}
	return s.Sign(size, root)
}

// VerifierKey implements CheckpointSigner.
func (k *KeySigner) VerifierKey(origin string) (string, error) {
	s, err := k.signer(origin)
	if err != nil {
		return "", err
	}
	return s.VerifierKey(), nil
}
