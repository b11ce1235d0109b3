// Package enrollcode is the one string the election committee hands a
// canvasser to join an election: where the server is, which election, a
// one-time token, and the fingerprint of the server's key so the device can
// tell it reached the right server before it trusts anything the server says.
//
// The code is a URI in the form
//
//	doorstep:enroll?server=HOST:PORT&election=ID&token=TOKEN&fp=FINGERPRINT
//
// with the values query-escaped, the parameters in that order, each exactly
// once. It is plain text so it survives copy and paste, chat apps and QR
// codes alike. TOKEN is 128 random bits in unpadded base32 (RFC 4648,
// upper case; Parse accepts either case and returns the canonical
// spelling). The committee's enrollment grant records only TokenHash of it,
// never the token itself; the device sends the canonical token to enroll.
package enrollcode
