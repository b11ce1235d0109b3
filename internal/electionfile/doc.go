// Package electionfile reads the files the election committee writes by
// hand or exports from a spreadsheet: the election definition and the
// roster of units. It turns them into the records' messages and domain
// types, and says exactly where a file is wrong (line and field), because
// the person fixing it has the file open, not the code.
//
// # Election definition
//
// JSON, or YAML with the same field names. Fields:
//
//	election_id           required, no spaces, e.g. "cuihu-2026-4th"
//	title                 required
//	committee_public_key  optional base64 ed25519 key; "doorstep election
//	                      create" fills it from the committee's own key
//	contest_policy        "hold" (default), "first" or "last"
//	sync_deadline         required, RFC 3339 with offset,
//	                      e.g. "2026-07-05T20:00:00+08:00"
//	rules_version         free text naming the rule set
//	future_skew_ms        optional; records dated further ahead are flagged
//	objection_period      optional; how long the preliminary results notice
//	                      (公示) stays up after the close before the committee
//	                      may certify the result, e.g. "7d" or "168h" (days
//	                      "d" and Go's h, m, s; at most 366 days). Without it
//	                      the committee may certify at the sync deadline.
//	items                 the ballot sheet, in order:
//	  item_id, title      required
//	  threshold           a motion: "ordinary" (more than 1/2) or
//	                      "special" (at least 3/4)
//	  seats, candidates   a candidate election: elect at most seats of
//	                      candidates [{candidate_id, name}]
//
// Enum values may also be written as in the protobuf (CONTEST_POLICY_HOLD,
// THRESHOLD_CLASS_SPECIAL). Unknown fields are errors, so a typo never
// silently drops a rule.
//
// # Roster
//
// CSV in UTF-8 (a leading byte-order mark, as spreadsheets write, is
// fine) with a header naming the columns unit_id, building, area_m2,
// owner_key and developer_held in any order. area_m2 is square metres with
// at most two decimals ("89.50") and is read exactly into 0.01 m², never
// through a float. developer_held is true/false, yes/no, 1/0, 是/否, or
// empty for false; all developer-held units share one owner key.
package electionfile
