package store

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/doorstep-vote/doorstep/internal/tally"
)

// UnitOutcomes calls fn for every unit with ballots, in unit id order, with
// its reconciled outcome: the store tests compare it with tally.Compute.
func (s *Store) UnitOutcomes(ctx context.Context, electionID string, fn func(unitID string, o tally.UnitOutcome) error) error {
	return s.view(electionID, func(eb *bolt.Bucket) error {
		return eb.Bucket(bucketOutcome).ForEach(func(k, v []byte) error {
			var o tally.UnitOutcome
			if err := o.UnmarshalBinary(v); err != nil {
				return err
			}
			return fn(string(k), o)
		})
	})
}
