// Package signed makes, checks and decodes signed records: the
// {body, signature} envelope of DESIGN's "Signed bytes are the bytes on the
// wire". It also converts the record's protobuf messages to the election
// domain, and the tally's verdicts on a ballot to the API's statuses.
// Verification always happens over the exact body bytes, before any
// decoding, and nothing here ever re-encodes a received body.
//
// The record rules that the server applies and the auditor's verifier
// re-applies from the log are stated here once (rules.go): device ids,
// the ballot's and visit's field checks, and which rejections still take
// a place in an author's chain. Each side still makes its own decisions.
package signed
