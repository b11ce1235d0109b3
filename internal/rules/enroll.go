package rules

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// DeviceID is the id a device key gets: "dv-" and the lower-case hex of
// the first 8 bytes of the key's SHA-256. One key always gets the same
// id, so an interrupted enrollment retried with the same key gets the
// same id, and a verifier can check an enrollment's id against its key.
func DeviceID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return "dv-" + hex.EncodeToString(h[:8])
}

// Grant is an enrollment grant as a decision needs it.
type Grant struct {
	// Expires is when the grant's code stops working; zero for never.
	Expires time.Time
	// UsedBy is the device id that enrolled with it, "" while unused.
	UsedBy string
}

// Enrollment decides whether device deviceID, whose key is not enrolled
// yet, may enroll at time at with grant g (nil when no grant matches the
// code) under the label it asks for. It returns done when the device
// already enrolled with this grant (a retry, which changes nothing).
func Enrollment(state State, g *Grant, deviceID, label string, at time.Time) (done bool, err error) {
	if err := election.CheckText("label", label, election.MaxTitleLen); err != nil {
		return false, err
	}
	if state >= StateClosed {
		return false, election.Errorf(election.CodeFailedPrecondition, "election_id", "the election is closed; no new devices can enroll")
	}
	switch {
	case g == nil:
		return false, election.Errorf(election.CodePermissionDenied, "enrollment_token", "this enrollment code is not known: ask the committee for a new one")
	case g.UsedBy == deviceID:
		return true, nil
	case g.UsedBy != "":
		return false, election.Errorf(election.CodePermissionDenied, "enrollment_token", "this enrollment code was already used by another device: ask the committee for a new one")
	case !g.Expires.IsZero() && at.After(g.Expires):
		return false, election.Errorf(election.CodePermissionDenied, "enrollment_token", "this enrollment code expired at %s: ask the committee for a new one", g.Expires.UTC().Format(time.RFC3339))
	}
	return false, nil
}

// AuditorID is the id an auditor's key gets: "au-" and the lower-case hex
// of the first 8 bytes of the key's SHA-256, as for devices.
func AuditorID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return "au-" + hex.EncodeToString(h[:8])
}
