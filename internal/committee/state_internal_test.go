package committee

import (
	"bytes"
	"crypto/ed25519"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

func TestFileStem(t *testing.T) {
	tests := []struct{ in, want string }{
		{"cuihu-2026_4th", "cuihu-2026_4th"},
		{"v1.2", "v1.2"},
		{".hidden", "%2Ehidden"},
		{"../etc", "%2E.%2Fetc"},
		{"a/b", "a%2Fb"},
		{"a%b", "a%25b"},
		{"选", "%E9%80%89"},
	}
	for _, tt := range tests {
		if got := fileStem(tt.in); got != tt.want {
			t.Errorf("fileStem(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestStateOfAnotherElectionRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, bytes.NewReader(make([]byte, 32))); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, electionsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	// As on a case-insensitive filesystem: "E1" finds the file of "e1".
	if err := writeState(statePath(dir, "E1"), State{Version: stateVersion, ElectionID: "e1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "E1", time.Now, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("Open accepted another election's state")
	}
}

// stateSeed returns a real state file with pending and acknowledged records.
func stateSeed(t testing.TB) []byte {
	dir := t.TempDir()
	if _, err := Init(dir, bytes.NewReader(make([]byte, 32))); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, "e1", func() time.Time { return time.Unix(1e9, 0) }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pub := s.PublicKey()
	_, err = s.Sign(
		&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: &doorstepv1.ElectionDefinition{ElectionId: "e1", CommitteePublicKey: ed25519.PublicKey(pub)}}},
		&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Close{Close: &doorstepv1.CloseElection{}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	first := signed.BodyHash(s.st.Pending[0].Body)
	if err := s.Reconcile(1, first[:]); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func FuzzDecodeState(f *testing.F) {
	seed := stateSeed(f)
	f.Add(seed)
	f.Add([]byte(`{"version":1,"election_id":"e","seq":0,"acked":0,"hlc":0}`))
	f.Add([]byte(`{"version":1,"election_id":"e","seq":1,"acked":1,"last_hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","acked_hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeState(data)
		if err != nil {
			return
		}
		// Whatever decodes must check again after a write and a read.
		dir := t.TempDir()
		p := filepath.Join(dir, "s.json")
		if err := writeState(p, s); err != nil {
			t.Fatal(err)
		}
		again, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeState(again); err != nil {
			t.Fatalf("a state that decoded does not decode after writing: %v", err)
		}
	})
}
