// Package election holds Doorstep's domain: the election definition, the
// roster, ballot marks and the errors every layer shares. It does no I/O and
// imports nothing of storage or transport, so the tally and the verifier can
// build on it alone.
package election
