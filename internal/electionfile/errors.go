package electionfile

import "fmt"

// LineError places an error at a line of the file. Err is usually an
// *election.Error naming the field.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the error at that line.
func (e *LineError) Unwrap() error { return e.Err }
