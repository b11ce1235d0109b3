package cli

// groups lists the command groups in the order --help shows them.
func groups() []*Command {
	return []*Command{
		{Name: "committee", Summary: "the election committee's key", Sub: committeeCommands()},
		{Name: "election", Summary: "define, open, close and certify an election", Sub: electionCommands()},
		{Name: "roster", Summary: "import the roster of units", Sub: rosterCommands()},
		{Name: "device", Summary: "enroll, list and revoke canvassers' devices", Sub: deviceCommands()},
		{Name: "tally", Summary: "show the live tally and write the results notice", Sub: tallyCommands()},
		{Name: "comments", Summary: "read the residents' comments", Sub: commentsCommands()},
		{Name: "adjudicate", Summary: "settle contested units and split owners", Sub: adjudicateCommands()},
		{Name: "canvass", Summary: "record ballots door to door and sync them", Sub: canvassCommands()},
		{Name: "audit", Summary: "export and verify the election record", Sub: auditCommands()},
		demoCommand(),
	}
}
