package store

import (
	"crypto/ed25519"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
)

// electionCache is what signature checks need before a transaction starts:
// the definition and every author's public key. It only grows after
// commits; the transaction re-checks everything that can change (revocation,
// state) from the file.
type electionCache struct {
	def      *election.Definition
	defProto *doorstepv1.ElectionDefinition
	keys     map[string]ed25519.PublicKey // author id → key, the committee included
	// auditors are the read-only keys the committee granted, by auditor id.
	auditors map[string]auditorKey
}

// auditorKey is an auditor's key and whether its grant was revoked.
type auditorKey struct {
	pub     ed25519.PublicKey
	revoked bool
}

func (s *Store) cached(id string) *electionCache {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.elections[id]
}

// authorKey returns the public key of an author of an election.
func (s *Store) authorKey(electionID, author string) (ed25519.PublicKey, *electionCache, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ec := s.elections[electionID]
	if ec == nil {
		return nil, nil, false
	}
	k, ok := ec.keys[author]
	return k, ec, ok
}

func (s *Store) setAuditor(electionID, id string, pub ed25519.PublicKey, revoked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ec := s.elections[electionID]; ec != nil {
		ec.auditors[id] = auditorKey{pub: pub, revoked: revoked}
	}
}

// AuditorKey returns the key of an auditor the committee granted read
// access to an election, and whether it revoked the grant.
func (s *Store) AuditorKey(electionID, id string) (pub ed25519.PublicKey, revoked, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ec := s.elections[electionID]
	if ec == nil {
		return nil, false, false
	}
	a, ok := ec.auditors[id]
	return a.pub, a.revoked, ok
}

func (s *Store) addKey(electionID, author string, pub ed25519.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ec := s.elections[electionID]; ec != nil {
		ec.keys[author] = pub
	}
}

func decodeDefinition(v []byte) (*election.Definition, *doorstepv1.ElectionDefinition, error) {
	p := &doorstepv1.ElectionDefinition{}
	if err := proto.Unmarshal(v, p); err != nil {
		return nil, nil, fmt.Errorf("store: definition: %w", err)
	}
	d, err := rules.Definition(p)
	if err != nil {
		return nil, nil, fmt.Errorf("store: definition: %w", err)
	}
	return d, p, nil
}

func (s *Store) loadCaches() error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketElections).ForEachBucket(func(k []byte) error {
			eb := tx.Bucket(bucketElections).Bucket(k)
			v := eb.Bucket(bucketInfo).Get(keyDefinition)
			if v == nil {
				return nil
			}
			d, p, err := decodeDefinition(v)
			if err != nil {
				return err
			}
			ec := &electionCache{def: d, defProto: p, keys: map[string]ed25519.PublicKey{}, auditors: map[string]auditorKey{}}
			err = eb.Bucket(bucketAuditors).ForEach(func(id, v []byte) error {
				a, err := decodeAuditor(v)
				if err == nil {
					ec.auditors[string(id)] = auditorKey{pub: a.pub, revoked: a.revoked}
				}
				return err
			})
			if err != nil {
				return err
			}
			err = eb.Bucket(bucketDevices).ForEach(func(id, v []byte) error {
				dev, err := decodeDevice(v)
				if err != nil {
					return err
				}
				ec.keys[string(id)] = dev.pub
				return nil
			})
			if err != nil {
				return err
			}
			s.elections[string(k)] = ec
			return nil
		})
	})
}
