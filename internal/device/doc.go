// Package device is the canvasser's device: the ballot box a volunteer
// carries from door to door. It keeps everything the device knows in its own
// bbolt file inside a per-device folder: the enrollment, the election's
// signed committee records and roster, the outbox of signed records with the
// device's chain and hybrid clock, the server's answers, the per-unit status
// of the walk list, the last server checkpoint and the clock offset seen at
// each sync.
//
// A ballot or visit is signed and committed to disk (bbolt fsyncs on commit)
// before RecordBallot or RecordVisit returns, so a record saved at the door
// survives a dead battery. Records never leave the device: once the server
// acknowledges one, it is marked with the server's answer and kept as
// evidence. Sync pushes what the server lacks, resumes after any failure and
// talks to the server only through the doorstep.v1 SyncService API.
//
// Only this package's storage code (store.go) touches bbolt; no transaction
// is ever held across a network call.
package device
