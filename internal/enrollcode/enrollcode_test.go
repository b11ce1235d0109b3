package enrollcode_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/enrollcode"
)

// A fixed token: 16 bytes 0x00..0x0f in base32.
const token = "AAAQEAYEAUDAOCAJBIFQYDIOB4"

var good = enrollcode.Code{
	Server:      "tally.example.org:7070",
	ElectionID:  "cuihu-2026-4th",
	Token:       token,
	Fingerprint: "SHA256:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg",
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		code enrollcode.Code
	}{
		{"plain", good},
		{"ipv4", enrollcode.Code{Server: "192.0.2.7:443", ElectionID: "e1", Token: token, Fingerprint: "fp"}},
		{"ipv6", enrollcode.Code{Server: "[2001:db8::1]:7070", ElectionID: "e1", Token: token, Fingerprint: "fp"}},
		{"escapes", enrollcode.Code{Server: "h:1", ElectionID: "选举/4&x=y", Token: token, Fingerprint: "a+b/c=="}},
		{"tls pin", enrollcode.Code{Server: "h:1", ElectionID: "e1", Token: token, Fingerprint: "fp", TLS: "sha256/47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}},
		{"plaintext on loopback", enrollcode.Code{Server: "127.0.0.1:7070", ElectionID: "e1", Token: token, Fingerprint: "fp", TLS: "plaintext"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := enrollcode.Encode(tt.code)
			if !strings.HasPrefix(s, enrollcode.Prefix) {
				t.Fatalf("Encode = %q; want prefix %q", s, enrollcode.Prefix)
			}
			if strings.ContainsAny(s, " \n\t") {
				t.Errorf("Encode = %q; want no white space", s)
			}
			got, err := enrollcode.Parse("  " + s + "\n")
			if err != nil {
				t.Fatalf("Parse(Encode(%+v)): %v", tt.code, err)
			}
			if got != tt.code {
				t.Errorf("Parse(Encode(c)) = %+v; want %+v", got, tt.code)
			}
		})
	}
}

func TestParseRefusesABadPin(t *testing.T) {
	bad := good
	bad.TLS = "sha1/abc"
	if _, err := enrollcode.Parse(enrollcode.Encode(bad)); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("Parse of a code with a malformed pin: %v; want an error naming tls", err)
	}
}

func TestParseNormalisesToken(t *testing.T) {
	lower := good
	lower.Token = strings.ToLower(token)
	got, err := enrollcode.Parse(enrollcode.Encode(lower))
	if err != nil {
		t.Fatal(err)
	}
	if got.Token != token {
		t.Errorf("token = %q; want %q", got.Token, token)
	}
	// The last letter of a 16-byte token carries two spare bits: "4" and
	// "5" decode alike and must come back as one spelling.
	alias := good
	alias.Token = token[:len(token)-1] + "5"
	got, err = enrollcode.Parse(enrollcode.Encode(alias))
	if err != nil {
		t.Fatal(err)
	}
	if got.Token != token {
		t.Errorf("token = %q; want canonical %q", got.Token, token)
	}
}

func TestParseErrors(t *testing.T) {
	enc := enrollcode.Encode(good)
	tests := []struct {
		name string
		in   string
		want string // substring of the error
	}{
		{"empty", "", "not a doorstep enrollment code"},
		{"other scheme", "https://example.org/?server=a:1", "not a doorstep enrollment code"},
		{"no server", strings.Replace(enc, "server=tally.example.org%3A7070", "server=", 1), "server is missing"},
		{"no port", strings.Replace(enc, "%3A7070", "", 1), "not HOST:PORT"},
		{"port zero", strings.Replace(enc, "%3A7070", "%3A0", 1), "port must be"},
		{"port big", strings.Replace(enc, "%3A7070", "%3A70700", 1), "port must be"},
		{"port sign", strings.Replace(enc, "%3A7070", "%3A%2B70", 1), "port must be"},
		{"host empty", strings.Replace(enc, "tally.example.org", "", 1), "no usable host"},
		{"election missing", strings.Replace(enc, "election=cuihu-2026-4th", "election=", 1), "election: is required"},
		{"election space", strings.Replace(enc, "cuihu-2026-4th", "cuihu+2026", 1), "spaces"},
		{"token short", strings.Replace(enc, token, token[:20], 1), "not 16 bytes"},
		{"token bad letters", strings.Replace(enc, token, strings.Repeat("1", 26), 1), "not 16 bytes"},
		{"token missing", strings.Replace(enc, "token="+token, "token=", 1), "token is missing"},
		{"fp missing", strings.Replace(enc, "&fp=", "&fq=", 1), "unknown parameter"},
		{"fp empty", enc[:strings.Index(enc, "&fp=")+4], "fp (the server key fingerprint) is missing"},
		{"twice", enc + "&fp=x", "appears twice"},
		{"bad escape", strings.Replace(enc, "%3A", "%zz", 1), "bad escape"},
		{"huge", enrollcode.Prefix + strings.Repeat("a", 2000), "longer than any real code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := enrollcode.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded; want error containing %q", tt.in, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %q; want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
	if _, err := enrollcode.Parse("hello"); !errors.Is(err, enrollcode.ErrNotACode) {
		t.Errorf("Parse(hello) = %v; want ErrNotACode", err)
	}
}

func TestNewTokenAndHash(t *testing.T) {
	seq := make([]byte, 16)
	for i := range seq {
		seq[i] = byte(i)
	}
	tok, err := enrollcode.NewToken(bytes.NewReader(seq))
	if err != nil {
		t.Fatal(err)
	}
	if tok != token {
		t.Errorf("NewToken = %q; want %q", tok, token)
	}
	h, err := enrollcode.TokenHash(strings.ToLower(tok))
	if err != nil {
		t.Fatal(err)
	}
	// tallyd hashes the token text a device sends: the canonical spelling.
	want := sha256.Sum256([]byte(token))
	if !bytes.Equal(h, want[:]) {
		t.Errorf("TokenHash = %x; want sha256 of the canonical text %x", h, want)
	}
	if _, err := enrollcode.NewToken(bytes.NewReader(seq[:3])); err == nil {
		t.Error("NewToken with a short random source succeeded; want error")
	}
	if _, err := enrollcode.TokenHash("not a token"); err == nil {
		t.Error("TokenHash(not a token) succeeded; want error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(enrollcode.Encode(good))
	f.Add(enrollcode.Encode(enrollcode.Code{Server: "[::1]:1", ElectionID: "e", Token: token, Fingerprint: "f"}))
	f.Add("doorstep:enroll?server=a:1&election=e&token=" + token + "&fp=%ZZ")
	f.Add("doorstep:enroll?")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := enrollcode.Parse(s)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned a code that does not validate: %+v: %v", c, err)
		}
		again, err := enrollcode.Parse(enrollcode.Encode(c))
		if err != nil {
			t.Fatalf("Parse(Encode(%+v)): %v", c, err)
		}
		if again != c {
			t.Fatalf("round trip changed the code: %+v -> %+v", c, again)
		}
	})
}
