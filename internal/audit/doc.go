// Package record writes and checks the election record: the folder of
// plain files an auditor keeps and replays with no trust in the server
// (DESIGN "Ballot log and audit"; the format is api/SPEC.md).
//
// [Export] copies an election's log, signed checkpoint and published tally
// from a [Source] (the CLI's gRPC client, or the store in the demo) and
// writes the manifest and the human-readable CSVs next to them. [Verify]
// reads only the folder: it rebuilds the Merkle tree and checks it against
// the signed checkpoint, checks every record's signature, every author's
// chain, replays the server's decisions under the election's rules, and
// recomputes the tally with tally.Compute, which must reproduce the
// published one byte for byte. Everything it finds is a [Discrepancy]
// naming the entry, the author and the field.
//
// The package must not import the store, the server, bbolt or gRPC (a test
// enforces it): an auditor's verifier needs none of them.
package audit
