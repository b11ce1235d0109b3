package electionfile_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/electionfile"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

var committeeKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey)

const defJSON = `{
  "election_id": "cuihu-4th",
  "title": "第四届业主委员会换届选举",
  "contest_policy": "hold",
  "sync_deadline": "2026-07-05T20:00:00+08:00",
  "rules_version": "doorstep-rules-v1",
  "items": [
    {"item_id": "committee", "title": "选举业主委员会委员", "seats": 2,
     "candidates": [{"candidate_id": "c1", "name": "王建国"}, {"candidate_id": "c2", "name": "李秀英"}, {"candidate_id": "c3", "name": "张伟"}]},
    {"item_id": "rules", "title": "管理规约", "threshold": "ordinary"},
    {"item_id": "fund", "title": "续筹维修资金", "threshold": "THRESHOLD_CLASS_SPECIAL"}
  ]
}
`

const defYAML = `# the same election in YAML
election_id: cuihu-4th
title: 第四届业主委员会换届选举
contest_policy: HOLD
sync_deadline: 2026-07-05T20:00:00+08:00
rules_version: doorstep-rules-v1
items:
  - item_id: committee
    title: 选举业主委员会委员
    seats: 2
    candidates:
      - {candidate_id: c1, name: 王建国}
      - {candidate_id: c2, name: 李秀英}
      - {candidate_id: c3, name: 张伟}
  - item_id: rules
    title: 管理规约
    threshold: ordinary
  - item_id: fund
    title: 续筹维修资金
    threshold: special
`

func TestParseDefinition(t *testing.T) {
	deadline := time.Date(2026, 7, 5, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ name, data string }{
		{"json", defJSON},
		{"json with BOM", "\ufeff" + defJSON},
		{"yaml", defYAML},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := electionfile.ParseDefinition([]byte(tt.data), committeeKey)
			if err != nil {
				t.Fatal(err)
			}
			d, err := rules.Definition(p)
			if err != nil {
				t.Fatalf("result does not validate: %v", err)
			}
			if d.ID != "cuihu-4th" || d.Title != "第四届业主委员会换届选举" || d.RulesVersion != "doorstep-rules-v1" {
				t.Errorf("header = %q %q %q", d.ID, d.Title, d.RulesVersion)
			}
			if !d.CommitteeKey.Equal(committeeKey) {
				t.Errorf("committee key = %x; want %x", d.CommitteeKey, committeeKey)
			}
			if d.Policy != election.PolicyHold {
				t.Errorf("policy = %v; want hold", d.Policy)
			}
			if !d.SyncDeadline.Equal(deadline) {
				t.Errorf("sync deadline = %v; want %v", d.SyncDeadline, deadline)
			}
			if len(d.Items) != 3 {
				t.Fatalf("items = %d; want 3", len(d.Items))
			}
			c := d.Items[0]
			if c.Kind != election.KindCandidates || c.Seats != 2 || len(c.Candidates) != 3 || c.Candidates[1].Name != "李秀英" {
				t.Errorf("item 0 = %+v", c)
			}
			if d.Items[1].Kind != election.KindMotion || d.Items[1].Threshold != election.Ordinary {
				t.Errorf("item 1 = %+v; want ordinary motion", d.Items[1])
			}
			if d.Items[2].Threshold != election.Special {
				t.Errorf("item 2 = %+v; want special motion", d.Items[2])
			}
		})
	}
}

func TestParseDefinitionKey(t *testing.T) {
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
	withKey := strings.Replace(defJSON, `"title"`, `"committee_public_key": "`+base64.StdEncoding.EncodeToString(committeeKey)+`", "title"`, 1)
	tests := []struct {
		name    string
		data    string
		key     ed25519.PublicKey
		wantErr string
	}{
		{"file key, same local", withKey, committeeKey, ""},
		{"file key, no local", withKey, nil, ""},
		{"file key, other local", withKey, other, "not this committee's key"},
		{"no key anywhere", defJSON, nil, "committee_public_key"},
		{"bad base64", strings.Replace(defJSON, `"title"`, `"committee_public_key": "!!", "title"`, 1), committeeKey, "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := electionfile.ParseDefinition([]byte(tt.data), tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.GetCommitteePublicKey(), committeeKey) {
				t.Errorf("key = %x; want %x", p.GetCommitteePublicKey(), committeeKey)
			}
		})
	}
}

func TestParseDefinitionErrors(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		wantField string // election.Error field
		wantLine  int    // 0: no line
		wantMsg   string
	}{
		{"syntax", "{\n  \"election_id\": \"x\",\n  \"title\" \"t\"\n}", "file", 3, "not valid JSON"},
		{"type", "{\n  \"election_id\": 5\n}", "election_id", 2, "must be a string"},
		{"negative seats", strings.Replace(defJSON, `"seats": 2`, `"seats": -2`, 1), "items.seats", 8, "must be a uint32"},
		{"unknown field", strings.Replace(defJSON, `"rules_version"`, `"rule_version"`, 1), "file", 0, `unknown field "rule_version"`},
		{"trailing", defJSON + "{}", "file", 14, "more after the closing brace"},
		{"truncated", defJSON[:40], "file", 0, "ends before"},
		{"bad policy", strings.Replace(defJSON, `"hold"`, `"majority"`, 1), "contest_policy", 0, "first, hold, last"},
		{"bad threshold", strings.Replace(defJSON, `"ordinary"`, `"simple"`, 1), "items[1].threshold", 0, "ordinary, special"},
		{"no kind", strings.Replace(defJSON, `, "threshold": "ordinary"`, "", 1), "items[1]", 0, "needs a threshold"},
		{"both kinds", strings.Replace(defJSON, `"threshold": "ordinary"`, `"threshold": "ordinary", "seats": 1`, 1), "items[1]", 0, "both"},
		{"date only", strings.Replace(defJSON, "2026-07-05T20:00:00+08:00", "2026-07-05", 1), "sync_deadline", 0, "RFC 3339"},
		{"no deadline", strings.Replace(defJSON, `"sync_deadline": "2026-07-05T20:00:00+08:00",`, "", 1), "sync_deadline", 0, "is required"},
		{"too many seats", strings.Replace(defJSON, `"seats": 2`, `"seats": 4`, 1), "items[0].seats", 0, "between 1 and"},
		{"dup candidate", strings.Replace(defJSON, `"c2"`, `"c1"`, 1), "items[0].candidates[1].candidate_id", 0, "duplicate"},
		{"dup item", strings.Replace(defJSON, `"item_id": "fund"`, `"item_id": "rules"`, 1), "items[2].item_id", 0, "duplicate"},
		{"id with space", strings.Replace(defJSON, `"cuihu-4th"`, `"cuihu 4th"`, 1), "election_id", 0, "spaces"},
		{"yaml unknown", strings.Replace(defYAML, "rules_version:", "rulesversion:", 1), "file", 0, "line 6: field rulesversion not found"},
		{"yaml two docs", defYAML + "---\ntitle: x\n", "file", 0, "more than one YAML document"},
		{"yaml empty", "# nothing\n", "file", 0, "empty"},
		{"yaml not a map", "- a\n- b\n", "file", 0, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := electionfile.ParseDefinition([]byte(tt.data), committeeKey)
			if err == nil {
				t.Fatal("succeeded; want an error")
			}
			var e *election.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T); want an *election.Error inside", err, err)
			}
			if e.Field != tt.wantField {
				t.Errorf("field = %q; want %q (err %v)", e.Field, tt.wantField, err)
			}
			var le *electionfile.LineError
			gotLine := 0
			if errors.As(err, &le) {
				gotLine = le.Line
			}
			if gotLine != tt.wantLine {
				t.Errorf("line = %d; want %d (err %v)", gotLine, tt.wantLine, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q; want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestParseDefinitionTooLarge(t *testing.T) {
	big := make([]byte, electionfile.MaxDefinitionBytes+1)
	_, err := electionfile.ParseDefinition(big, committeeKey)
	if election.ErrorCode(err) != election.CodeTooLarge {
		t.Fatalf("err = %v; want CodeTooLarge", err)
	}
}

func FuzzParseDefinition(f *testing.F) {
	f.Add([]byte(defJSON))
	f.Add([]byte(defYAML))
	f.Add([]byte(`{"election_id":"e","title":"t","sync_deadline":"2026-01-01T00:00:00Z","items":[{"item_id":"i","title":"t","threshold":"special"}]}`))
	f.Add([]byte("items: [{item_id: a, title: b, seats: 1, candidates: [{candidate_id: x, name: y}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := electionfile.ParseDefinition(data, committeeKey)
		if err != nil {
			return
		}
		d, err := rules.Definition(p)
		if err != nil {
			t.Fatalf("ParseDefinition accepted a definition that does not validate: %v", err)
		}
		// The definition must survive being signed and decoded.
		key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
		rec := &doorstepv1.Record{Body: &doorstepv1.Record_Committee{Committee: &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: p}}}}
		sr, err := signed.Sign(key, rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(sr.GetBody()) == 0 || d.ID == "" {
			t.Fatalf("empty body or id for %q", data)
		}
	})
}
