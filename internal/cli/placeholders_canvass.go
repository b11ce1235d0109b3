package cli

// Replaced by the canvass and demo commands.
func canvassCommands() []*Command { return nil }
func demoCommand() *Command       { return &Command{Name: "demo", Summary: "play a rainy canvassing day end to end"} }
