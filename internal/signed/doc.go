// Package signed makes, checks and decodes signed records: the
// {body, signature} envelope of DESIGN's "Signed bytes are the bytes on the
// wire". It also converts the record's protobuf messages to the election
// domain. Verification always happens over the exact body bytes, before any
// decoding, and nothing here ever re-encodes a received body.
package signed
