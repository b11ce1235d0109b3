// Package layers holds, as one table-driven test, the rules of which
// package may depend on which: storage stays in the two storage packages,
// the domain and the decision rules stay pure, and the auditor's verifier
// never reaches the server. It has no code of its own.
package layers
