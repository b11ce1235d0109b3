// Package ballotlog is the logic of Doorstep's ballot log: how a log entry
// is encoded and hashed, how the RFC 6962 Merkle tree over the entries grows,
// how the server signs checkpoints of it, how devices and auditors check
// inclusion and consistency proofs, and how a ballot's receipt code is made.
//
// It does no storage of its own. The server's store persists entries and
// tree hashes and hands them back through [tlog.HashReader]; the auditor's
// verifier rebuilds the tree in memory with [Builder]. The tree, proofs and
// signed notes are those of golang.org/x/mod/sumdb/tlog and
// golang.org/x/mod/sumdb/note; this package fixes how Doorstep uses them, so
// that the server, devices and independent verifiers agree byte for byte.
// api/SPEC.md (section 6) states the formats, with test vectors.
package ballotlog
