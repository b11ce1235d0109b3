package callauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
)

// A sign-in token lets a browser in to the dashboard of one election: it
// is the signed metadata of a call of SignInMethod, made on the machine
// that holds the key (the committee's folder, an auditor's key file) and
// carried to the browser in a link. The server checks it as it checks a
// signed call, so it is good once and only within Window of its making,
// and the key never leaves its machine.

// SignInMethod is the pseudo-method a sign-in token signs. No service has
// it, so a sign-in token can be nothing but a sign-in, and no captured
// call signature can sign anyone in.
const SignInMethod = "/doorstep.web/SignIn"

// SignInRequest is the request a sign-in token's signature covers.
func SignInRequest(electionID string) proto.Message {
	return &doorstepv1.WatchTallyRequest{ElectionId: electionID}
}

// tokenKeys are the metadata a token carries, in its order.
var tokenKeys = [...]string{KeyElecID, KeyID, KeyTime, KeyNonce, KeySig}

// ErrBadToken is a sign-in token that is not one.
var ErrBadToken = errors.New("the sign-in link is damaged or incomplete: copy the whole link, or make a new one")

// SignInToken makes a sign-in token for s's election, at s's time.
func (s *Signer) SignInToken() (string, error) {
	h, err := RequestHash(SignInRequest(s.ElectionID))
	if err != nil {
		return "", err
	}
	md, err := s.Metadata(SignInMethod, h)
	if err != nil {
		return "", err
	}
	vals := make([]string, len(tokenKeys))
	for i, k := range tokenKeys {
		vals[i] = first(md, k)
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// MaxTokenBytes bounds a sign-in token, far above what SignInToken makes.
const MaxTokenBytes = 2048

// ParseSignInToken turns a sign-in token back into the metadata of its
// call, for the server to check (it checks nothing itself).
func ParseSignInToken(tok string) (metadata.MD, error) {
	if len(tok) > MaxTokenBytes {
		return nil, ErrBadToken
	}
	// Strict: one token has one spelling.
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil {
		return nil, ErrBadToken
	}
	var vals []string
	if err := json.Unmarshal(b, &vals); err != nil || len(vals) != len(tokenKeys) {
		return nil, ErrBadToken
	}
	md := metadata.MD{}
	for i, k := range tokenKeys {
		if vals[i] == "" {
			return nil, ErrBadToken
		}
		md.Set(k, vals[i])
	}
	return md, nil
}
