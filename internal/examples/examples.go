// Package examples ships a worked example election so that people can try
// Doorstep, and 'doorstep demo' can run, with no files of their own: the
// 4th owners'-committee re-election of an estate (第四届业主委员会换届选举)
// with three motions on the same ballot sheet, and its roster.
//
// election.json elects 7 of 9 candidates and asks three motions: revised
// estate rules and the use of the maintenance fund for roof waterproofing
// (both ORDINARY), and raising the maintenance fund (SPECIAL). roster.csv
// has 288 units in buildings 1–9 (ids building-entrance-room, e.g.
// "3-2-501"), 10 owners holding 2–3 units each ("holder-NN"), 15 co-owned
// units whose co-owners share one key ("co-owners-UNIT"), and 20 unsold
// units held by the developer (key "developer").
//
// Copy them to start a real election:
//
//	doorstep election create --file election.json
//	doorstep roster import --election cuihu-2026-4th --file roster.csv
package examples

import _ "embed"

// ElectionJSON is the example election definition (electionfile format).
//
//go:embed election.json
var ElectionJSON []byte

// RosterCSV is the example roster (electionfile roster CSV).
//
//go:embed roster.csv
var RosterCSV []byte
