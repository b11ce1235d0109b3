// Package signed makes, checks and decodes signed records: the
// {body, signature} envelope of DESIGN's "Signed bytes are the bytes on the
// wire". It signs, verifies the signature over the exact body bytes,
// decodes the envelope's fields and hashes bodies for author chains, and
// it never re-encodes a received body. What a record may say, and what the
// server decides about it, is package rules'.
package signed
