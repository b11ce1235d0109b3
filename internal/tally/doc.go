// Package tally reconciles each unit's ballots and counts an election by area
// and headcount against the legal thresholds. It is pure: no I/O, no clock,
// no storage or transport imports (a test enforces this), so the server's
// store and the auditor's verifier compute exactly the same thing.
//
// Two paths produce a Result and must agree byte for byte:
//
//   - Incremental, used by the store inside each transaction: ReconcileUnit
//     recomputes one unit's UnitOutcome from the set of its ballots; the
//     unit's owner's OwnerState drops the old counted marks and adds the new
//     ones; Totals subtracts the owner's old Contribution, adds the new one
//     and applies the unit counters. Decide reads Totals in
//     O(items + candidates log candidates), so a live tally read never scans.
//   - Batch, used by the verifier: Compute reconciles every unit from scratch
//     and counts owner by owner, written independently of the incremental
//     path so each checks the other.
//
// Reconciliation is a function of the set of a unit's ballots and the
// latest committee decision, never of arrival order; ties are broken by
// hybrid logical clock, then device id, then record id, all bytewise.
//
// Arithmetic is exact: areas are int64 in 0.01 m², headcounts are integers,
// thresholds are integer cross-multiplications compared in 128 bits, so no
// value read back from storage can overflow a decision.
//
// Not implemented: "silent owners follow the majority" (从众). Some local
// rules count owners who did not vote as voting with the majority; courts
// dispute it and Doorstep leaves it off. When it is added, the added votes
// must be reported separately, never mixed into these counts.
package tally
