package device

// The device file's buckets, all of them. Keys of sequence-numbered buckets
// are 8-byte big-endian author_seq values, so cursors walk them in chain
// order.
var (
	// bucketMeta holds single values under the meta* keys below.
	bucketMeta = []byte("meta")
	// bucketCommittee: committee author_seq → doorstep.v1.SignedRecord bytes
	// as the server served them, verified with the committee key.
	bucketCommittee = []byte("committee")
	// bucketRoster: unit id → doorstep.v1.Unit bytes, rebuilt from the
	// committee's roster records whenever they change.
	bucketRoster = []byte("roster")
	// bucketRecords: author_seq → doorstep.v1.SignedRecord bytes of every
	// record this device ever made. Never deleted.
	bucketRecords = []byte("records")
	// bucketPending: author_seq → empty. The outbox: records with no answer
	// from the server yet. A key leaves only in the transaction that stores
	// the record's answer in bucketResults.
	bucketPending = []byte("pending")
	// bucketResults: author_seq → doorstep.v1.RecordResult bytes, the
	// server's answer for the record.
	bucketResults = []byte("results")
	// bucketOwn: unit id → unitState (JSON): this device's own ballots and
	// visits at the unit.
	bucketOwn = []byte("own")
	// bucketStatus: unit id → doorstep.v1.UnitStatus bytes from the server.
	bucketStatus = []byte("status")
)

// allBuckets lists every bucket; Open creates any that are missing.
var allBuckets = [][]byte{
	bucketMeta, bucketCommittee, bucketRoster, bucketRecords,
	bucketPending, bucketResults, bucketOwn, bucketStatus,
}

// Keys in bucketMeta.
var (
	// metaSchema: one byte, schemaVersion.
	metaSchema = []byte("schema")
	// metaEnrollment: Enrollment (JSON); absent until Join succeeds.
	metaEnrollment = []byte("enrollment")
	// metaChain: chainHead (binary): the last author_seq and its body hash.
	metaChain = []byte("chain")
	// metaHLC: 8-byte big-endian: the hybrid clock's last value.
	metaHLC = []byte("hlc")
	// metaElection: electionState (JSON): what the committee records say.
	metaElection = []byte("election")
	// metaDefinition: committee author_seq (8 bytes) of the define_election
	// record in bucketCommittee.
	metaDefinition = []byte("definition")
	// metaCursor: the opaque ListUnitStatus page token.
	metaCursor = []byte("cursor")
	// metaCheckpoint: doorstep.v1.Checkpoint bytes: the latest the server
	// returned.
	metaCheckpoint = []byte("checkpoint")
	// metaSync: syncInfo (JSON): last sync, clock offset, last error.
	metaSync = []byte("sync")
)

// schemaVersion is the layout described above. A file with another version
// is refused rather than misread.
const schemaVersion = 1
