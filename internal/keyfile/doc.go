// Package keyfile keeps an ed25519 private key in a file of its own, as
// the tally server, each canvasser's device and the election committee
// each do: the 64 bytes of the key (seed, then public key) and nothing
// else, with mode 0600.
//
// Load refuses a file that others may read or change, or that is not a
// whole key; Create writes a new key so that a crash leaves no key or a
// whole one, and never replaces an existing file. Every message names the
// file and ends with what to do, so a caller may append advice of its own
// (what a leaked key means for it, where its backups are).
package keyfile
