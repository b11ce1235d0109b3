// Package rules holds every decision Doorstep makes about a signed record,
// written once: the server's store applies them inside its write
// transaction and the auditor's verifier re-applies them while it replays
// the ballot log (api/SPEC.md section 8). Each of the two implements a
// small read-only [View] of the election at the point of decision; the
// functions here read only that view and return a [Verdict].
//
// What is here: a ballot's and a visit's form ([Form], [CheckBallot],
// [CheckVisit]), a record's place in its author's chain ([Place]), the
// time rule ([CheckTime]), every committee action ([Committee]), the
// election id's syntax, device enrolment, and the mapping of the tally's
// verdicts to the API's statuses. What is not: storage, transport, and
// aggregation — the store's incremental totals and the verifier's batch
// tally.Compute stay independent, so that each checks the other.
//
// The package is pure: no I/O, no clock (times are arguments), nothing of
// bbolt or gRPC (a test enforces it).
package rules
