package cli

// groups lists the command groups in the order --help shows them.
func groups() []*Command {
	return []*Command{
		{Name: "committee", Summary: "help.committee.summary", Sub: committeeCommands()},
		{Name: "election", Summary: "help.election.summary", Sub: electionCommands()},
		{Name: "roster", Summary: "help.roster.summary", Sub: rosterCommands()},
		{Name: "device", Summary: "help.device.summary", Sub: deviceCommands()},
		{Name: "tally", Summary: "help.tally.summary", Sub: tallyCommands()},
		{Name: "comments", Summary: "help.comments.summary", Sub: commentsCommands()},
		{Name: "adjudicate", Summary: "help.adjudicate.summary", Sub: adjudicateCommands()},
		{Name: "canvass", Summary: "record ballots door to door and sync them", Sub: canvassCommands()},
		{Name: "audit", Summary: "export and verify the election record", Sub: auditCommands()},
		demoCommand(),
	}
}
