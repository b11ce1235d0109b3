package cli

// Replaced by the audit commands.
func auditCommands() []*Command { return nil }
