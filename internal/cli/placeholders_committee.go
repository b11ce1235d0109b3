package cli

// Replaced by the committee commands.
func committeeCommands() []*Command  { return nil }
func electionCommands() []*Command   { return nil }
func rosterCommands() []*Command     { return nil }
func deviceCommands() []*Command     { return nil }
func tallyCommands() []*Command      { return nil }
func adjudicateCommands() []*Command { return nil }
