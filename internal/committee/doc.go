// Package committee keeps the election committee's own machine state in
// one folder: the committee's ed25519 signing key, made here and never sent
// anywhere, and per election the committee's chain of signed records.
//
// Every committee record (define, roster, enrollment grant, revocation,
// open, close, adjudication) is numbered author_seq 1, 2, 3, … per
// election with no gaps and linked to the previous one by prev_hash. The
// chain is persisted, with the signed records not yet acknowledged by the
// server, before any of them is sent: a crash or a dropped connection then
// costs a resend of the same bytes, never a reused sequence number or a
// second record with the same number.
//
// Layout of the folder:
//
//	committee.key            64-byte ed25519 private key, mode 0600
//	elections/ID.json        one election's chain state (State), ID escaped
//	elections/ID.lock        held while a command works on that election
//
// A Session joins the chain to a Client of the tally server whose calls
// are signed with the committee key: it sends what the Signer signed and
// records the server's answers. The committee's commands and the demo both
// work through it.
//
// The folder belongs to one machine. Two machines signing with the same key
// for the same election would fork the chain; Reconcile notices when the
// server holds records this machine did not make.
package committee
