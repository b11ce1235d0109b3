package electionfile

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// MaxDefinitionBytes bounds a definition file: its record must fit in one
// committee record body.
const MaxDefinitionBytes = signed.MaxCommitteeBodyBytes

// fileDefinition is the file's shape; see the package documentation.
type fileDefinition struct {
	ElectionID         string     `json:"election_id" yaml:"election_id"`
	Title              string     `json:"title" yaml:"title"`
	CommitteePublicKey string     `json:"committee_public_key" yaml:"committee_public_key"`
	ContestPolicy      string     `json:"contest_policy" yaml:"contest_policy"`
	SyncDeadline       string     `json:"sync_deadline" yaml:"sync_deadline"`
	RulesVersion       string     `json:"rules_version" yaml:"rules_version"`
	FutureSkewMs       int64      `json:"future_skew_ms" yaml:"future_skew_ms"`
	ObjectionPeriod    string     `json:"objection_period" yaml:"objection_period"`
	Items              []fileItem `json:"items" yaml:"items"`
}

type fileItem struct {
	ItemID     string          `json:"item_id" yaml:"item_id"`
	Title      string          `json:"title" yaml:"title"`
	Threshold  string          `json:"threshold" yaml:"threshold"`
	Seats      uint32          `json:"seats" yaml:"seats"`
	Candidates []fileCandidate `json:"candidates" yaml:"candidates"`
}

type fileCandidate struct {
	CandidateID string `json:"candidate_id" yaml:"candidate_id"`
	Name        string `json:"name" yaml:"name"`
}

// ParseDefinition reads an election definition file, JSON when its first
// non-blank character is '{' and YAML otherwise, and returns the validated
// message. committeeKey fills committee_public_key when the file has none;
// when the file has one, it must equal committeeKey (if given), so a file
// meant for another committee is not signed by mistake.
//
// Errors are *election.Error naming the field, wrapped in a *LineError when
// the line is known.
func ParseDefinition(data []byte, committeeKey ed25519.PublicKey) (*doorstepv1.ElectionDefinition, error) {
	if len(data) > MaxDefinitionBytes {
		return nil, election.Errorf(election.CodeTooLarge, "file", "is %d bytes; a definition may be at most %d", len(data), MaxDefinitionBytes)
	}
	var f fileDefinition
	var err error
	if trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(trimmed) > 0 && trimmed[0] == '{' {
		err = decodeJSON(data, &f)
	} else {
		err = decodeYAML(data, &f)
	}
	if err != nil {
		return nil, err
	}
	p, err := f.proto(committeeKey)
	if err != nil {
		return nil, err
	}
	if _, err := rules.Definition(p); err != nil {
		return nil, err
	}
	return p, nil
}

func decodeJSON(data []byte, f *fileDefinition) error {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		return jsonError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &LineError{Line: lineAt(data, dec.InputOffset()), Err: election.Errorf(election.CodeInvalid, "file", "has more after the closing brace of the definition")}
	}
	return nil
}

func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &LineError{Line: lineAt(data, syn.Offset), Err: election.Errorf(election.CodeInvalid, "file", "is not valid JSON: %v", syn)}
	case errors.As(err, &typ):
		return &LineError{Line: lineAt(data, typ.Offset), Err: election.Errorf(election.CodeInvalid, typ.Field, "must be a %s, not a JSON %s", typ.Type, typ.Value)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return election.Errorf(election.CodeInvalid, "file", "ends before the definition is complete")
	}
	// Unknown fields: encoding/json names the field but gives no offset.
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return election.Errorf(election.CodeInvalid, "file", "%s (see the field list in the documentation)", msg)
}

func lineAt(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}

func decodeYAML(data []byte, f *fileDefinition) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return election.Errorf(election.CodeInvalid, "file", "is empty")
		}
		return election.Errorf(election.CodeInvalid, "file", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return election.Errorf(election.CodeInvalid, "file", "holds more than one YAML document; put one election in a file")
	}
	return nil
}

func (f *fileDefinition) proto(committeeKey ed25519.PublicKey) (*doorstepv1.ElectionDefinition, error) {
	p := &doorstepv1.ElectionDefinition{
		ElectionId:   f.ElectionID,
		Title:        f.Title,
		RulesVersion: f.RulesVersion,
		FutureSkewMs: f.FutureSkewMs,
	}
	switch {
	case f.CommitteePublicKey != "":
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(f.CommitteePublicKey))
		if err != nil || len(key) != ed25519.PublicKeySize {
			return nil, election.Errorf(election.CodeInvalid, "committee_public_key", "must be a %d-byte ed25519 key in base64; leave it out to use this machine's committee key", ed25519.PublicKeySize)
		}
		if committeeKey != nil && !bytes.Equal(key, committeeKey) {
			return nil, election.Errorf(election.CodeInvalid, "committee_public_key", "is not this committee's key (%s); leave it out to use this machine's key", base64.StdEncoding.EncodeToString(committeeKey))
		}
		p.CommitteePublicKey = key
	case committeeKey != nil:
		p.CommitteePublicKey = bytes.Clone(committeeKey)
	}
	policy, err := parseEnum("contest_policy", f.ContestPolicy, "CONTEST_POLICY_", doorstepv1.ContestPolicy_value)
	if err != nil {
		return nil, err
	}
	p.ContestPolicy = doorstepv1.ContestPolicy(policy)
	if p.ContestPolicy == doorstepv1.ContestPolicy_CONTEST_POLICY_UNSPECIFIED {
		p.ContestPolicy = doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD
	}
	if f.SyncDeadline != "" {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(f.SyncDeadline))
		if err != nil {
			return nil, election.Errorf(election.CodeInvalid, "sync_deadline", "%q is not an RFC 3339 time with a zone, e.g. 2026-07-05T20:00:00+08:00", f.SyncDeadline)
		}
		p.SyncDeadline = timestamppb.New(t)
	}
	if f.ObjectionPeriod != "" {
		d, err := ParseDuration("objection_period", f.ObjectionPeriod)
		if err != nil {
			return nil, err
		}
		p.ObjectionPeriodMs = d.Milliseconds()
	}
	for i, it := range f.Items {
		field := "items[" + strconv.Itoa(i) + "]"
		pi := &doorstepv1.Item{ItemId: it.ItemID, Title: it.Title}
		isMotion := it.Threshold != ""
		isElection := it.Seats != 0 || len(it.Candidates) != 0
		switch {
		case isMotion && isElection:
			return nil, election.Errorf(election.CodeInvalid, field, "item %q has both a threshold (a motion) and seats or candidates (an election); keep one", it.ItemID)
		case isMotion:
			th, err := parseEnum(field+".threshold", it.Threshold, "THRESHOLD_CLASS_", doorstepv1.ThresholdClass_value)
			if err != nil {
				return nil, err
			}
			pi.Kind = &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass(th)}}
		case isElection:
			ce := &doorstepv1.CandidateElection{Seats: it.Seats}
			for _, c := range it.Candidates {
				ce.Candidates = append(ce.Candidates, &doorstepv1.Candidate{CandidateId: c.CandidateID, Name: c.Name})
			}
			pi.Kind = &doorstepv1.Item_Candidates{Candidates: ce}
		default:
			return nil, election.Errorf(election.CodeInvalid, field, "item %q needs a threshold (ordinary or special) for a motion, or seats and candidates for an election", it.ItemID)
		}
		p.Items = append(p.Items, pi)
	}
	return p, nil
}

// parseEnum accepts a short lower-case name ("hold") or the protobuf name
// ("CONTEST_POLICY_HOLD"), in any case; "" is 0 (unspecified).
func parseEnum(field, s, prefix string, values map[string]int32) (int32, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, prefix) {
		name = prefix + name
	}
	v, ok := values[name]
	if !ok || v == 0 {
		var names []string
		for n, v := range values {
			if v != 0 {
				names = append(names, strings.ToLower(strings.TrimPrefix(n, prefix)))
			}
		}
		slices.Sort(names)
		return 0, election.Errorf(election.CodeInvalid, field, "%q is not one of %s", s, strings.Join(names, ", "))
	}
	return v, nil
}
