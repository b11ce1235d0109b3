// Package store is tallyd's storage: one bbolt file holding every election's
// records, devices, per-unit state, running tally and ballot log. It is the
// only server package that imports bbolt.
//
// Every push is decided inside the write transaction that stores it: the
// record, the author's chain, the unit's reconciled state, the owner's
// aggregate, the running tally and the log entry with its Merkle hashes are
// written together, so a restart never replays anything and an acknowledged
// record is on disk with everything it changed. Concurrent pushes share one
// transaction and one fsync (group commit: commitLoop in store.go).
//
// The decisions themselves are package rules': the write transaction
// (writeTx, tx.go) is the rules.View they read (view.go), and this package
// carries out what they accept. Queries return domain values; the server
// builds the API's messages from them.
package store
