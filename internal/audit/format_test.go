package audit_test

import (
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/audit"
)

// TestParseVerifierKey: only the spelling SPEC 6.4 gives is taken, so one
// key has one verifier key.
func TestParseVerifierKey(t *testing.T) {
	m, err := audit.ReadManifest(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	good := m.ServerVerifierKey
	name, rest, _ := strings.Cut(good, "+")
	hash, b64, _ := strings.Cut(rest, "+")
	for _, tc := range []struct {
		name, vkey, wantErr string
	}{
		{"as published", good, ""},
		{"upper-case hash", name + "+" + strings.ToUpper(hash) + "+" + b64, "lower-case hex"},
		{"hash of another key", name + "+00000000+" + b64, "server verifier key"},
		{"not ed25519", name + "+" + hash + "+AgAA", "server verifier key"},
		{"two parts", name + "+" + hash, "server verifier key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotName, pub, err := audit.ParseVerifierKey(tc.vkey)
			if tc.wantErr == "" {
				if err != nil || gotName != name || len(pub) != 32 {
					t.Fatalf("ParseVerifierKey(%q) = %q, %x, %v", tc.vkey, gotName, pub, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseVerifierKey(%q): err %v, want one saying %q", tc.vkey, err, tc.wantErr)
			}
		})
	}
}
