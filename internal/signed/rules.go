package signed

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// The rules here are stated once for the server that decides and the
// auditor's verifier that re-decides (api/SPEC.md sections 3 and 8): each
// still makes its own decisions, but from the same tables.

// DeviceID is the id a device key gets: "dv-" and the lower-case hex of
// the first 8 bytes of the key's SHA-256. One key always gets the same
// id, so an interrupted enrollment retried with the same key gets the
// same id, and a verifier can check an enrollment's id against its key.
func DeviceID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return "dv-" + hex.EncodeToString(h[:8])
}

// chainSlotReasons are the rejections of what a verified record says, not
// of where it sits in its author's chain.
var chainSlotReasons = map[doorstepv1.ReasonCode]bool{
	doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT:        true,
	doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION:   true,
	doorstepv1.ReasonCode_REASON_CODE_ELECTION_NOT_OPEN:   true,
	doorstepv1.ReasonCode_REASON_CODE_ELECTION_CLOSED:     true,
	doorstepv1.ReasonCode_REASON_CODE_AFTER_SYNC_DEADLINE: true,
	doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION:      true,
	doorstepv1.ReasonCode_REASON_CODE_MALFORMED:           true,
}

// TakesChainSlot reports whether a record whose signature verified, when
// rejected for reason, still takes its place in its author's chain (when
// it fits there without contradiction): the author's later records then
// show no gap, and the device does not send it again.
func TakesChainSlot(reason doorstepv1.ReasonCode) bool { return chainSlotReasons[reason] }

// CheckBallot applies a ballot's own field rules: the unit id's form, the
// record id it supersedes, who signed (a proxy names the proxy document)
// and the lengths of its texts. The roster and the selections need the
// election and are checked apart.
func CheckBallot(b *doorstepv1.Ballot) error {
	if err := election.CheckID("ballot.unit_id", b.GetUnitId()); err != nil {
		return err
	}
	if b.GetSupersedes() != "" {
		if err := CheckRecordID("ballot.supersedes", b.GetSupersedes()); err != nil {
			return err
		}
	}
	if _, ok := doorstepv1.SignerKind_name[int32(b.GetSignerKind())]; !ok {
		return election.Errorf(election.CodeInvalid, "ballot.signer_kind", "unknown signer kind %d", b.GetSignerKind())
	}
	if b.GetSignerKind() == doorstepv1.SignerKind_SIGNER_KIND_PROXY && b.GetProxyReference() == "" {
		return election.Errorf(election.CodeInvalid, "ballot.proxy_reference", "a proxy's ballot needs the proxy document's reference")
	}
	if err := election.CheckText("ballot.proxy_reference", b.GetProxyReference(), election.MaxTitleLen); err != nil {
		return err
	}
	if err := election.CheckText("ballot.signer_name", b.GetSignerName(), election.MaxTitleLen); err != nil {
		return err
	}
	return election.CheckText("ballot.comment", b.GetComment(), election.MaxTextLen)
}

// CheckVisit applies a visit's own field rules: the unit id's form, a
// known outcome and the note's length. The roster is checked apart.
func CheckVisit(v *doorstepv1.Visit) error {
	if err := election.CheckID("visit.unit_id", v.GetUnitId()); err != nil {
		return err
	}
	if _, ok := doorstepv1.VisitOutcome_name[int32(v.GetOutcome())]; !ok || v.GetOutcome() == doorstepv1.VisitOutcome_VISIT_OUTCOME_UNSPECIFIED {
		return election.Errorf(election.CodeInvalid, "visit.outcome", "must be not home, refused, ballot left or moved")
	}
	return election.CheckText("visit.note", v.GetNote(), election.MaxTextLen)
}
