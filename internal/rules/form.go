package rules

import (
	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// CheckBallot applies a ballot's own field rules: the unit id's form, the
// record id it supersedes, who signed (a proxy names the proxy document)
// and the lengths of its texts. The roster and the selections need the
// election and are checked apart.
func CheckBallot(b *doorstepv1.Ballot) error {
	if err := election.CheckID("ballot.unit_id", b.GetUnitId()); err != nil {
		return err
	}
	if b.GetSupersedes() != "" {
		if err := signed.CheckRecordID("ballot.supersedes", b.GetSupersedes()); err != nil {
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
