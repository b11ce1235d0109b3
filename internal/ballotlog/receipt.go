package ballotlog

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U, so a code read aloud or copied by hand survives.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// receiptSymbols is the number of base32 symbols in a receipt code: 50 bits.
const receiptSymbols = 10

// ReceiptCode is the short code of a signed record that a device shows at
// the door and a household later looks up. It is the first 50 bits of
// SHA-256(body || signature), most significant bit first, written as ten
// Crockford base32 symbols in two groups of five: "XXXXX-XXXXX".
//
// body and signature are the SignedRecord's fields exactly as sent. An
// ed25519 signature is always 64 bytes, so the concatenation is unambiguous;
// hashing the two fields rather than a protobuf encoding of the message lets
// any language compute the code. 50 bits make a collision between two
// ballots of a million-ballot election unlikely (about 1 in 2,000); lookups
// pair the code with the unit to settle one anyway.
func ReceiptCode(signedRecordBody []byte, signature []byte) string {
	h := sha256.New()
	h.Write(signedRecordBody)
	h.Write(signature)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return ReceiptCodeFromHash(sum)
}

// ReceiptCodeFromHash is ReceiptCode for a caller that already holds
// SHA-256(body ‖ signature).
func ReceiptCodeFromHash(sum [sha256.Size]byte) string {
	bits := binary.BigEndian.Uint64(sum[:8])
	var code [receiptSymbols + 1]byte
	j := 0
	for i := range receiptSymbols {
		if i == receiptSymbols/2 {
			code[j] = '-'
			j++
		}
		code[j] = crockford[bits>>(64-5*(i+1))&0x1f]
		j++
	}
	return string(code[:])
}

// ParseReceiptCode reads a receipt code as a person typed it and returns it
// in the form [ReceiptCode] makes. It ignores case, spaces and dashes, and
// reads O as 0 and I or L as 1, as Crockford's base32 intends. The error is
// an *election.Error with code invalid, written for the person typing.
func ParseReceiptCode(s string) (string, error) {
	var sym []byte
	for _, r := range s {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r == 'o' || r == 'O':
			r = '0'
		case r == 'i' || r == 'I' || r == 'l' || r == 'L':
			r = '1'
		case 'a' <= r && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > 0x7f || !strings.ContainsRune(crockford, r) {
			return "", election.Errorf(election.CodeInvalid, "receipt_code",
				"%q is not a receipt code character; a code has ten letters and digits like 7K2QM-0XH4D (no U)", r)
		}
		if len(sym) == receiptSymbols {
			return "", election.Errorf(election.CodeInvalid, "receipt_code",
				"receipt code %q is longer than ten characters; a code looks like 7K2QM-0XH4D", s)
		}
		sym = append(sym, byte(r))
	}
	if len(sym) != receiptSymbols {
		return "", election.Errorf(election.CodeInvalid, "receipt_code",
			"receipt code %q has %d characters, not ten; a code looks like 7K2QM-0XH4D", s, len(sym))
	}
	return string(sym[:5]) + "-" + string(sym[5:]), nil
}
