// Package proctest runs Doorstep's commands as real processes in tests:
// it builds cmd/doorstep and cmd/tallyd once per test binary, starts them
// with their output collected, and kills them with SIGKILL at whatever
// moment a test picks, so crash tests exercise exactly what a dead battery
// or kill -9 leaves on disk.
//
// A package that uses it runs its tests through Main from TestMain, which
// removes the binaries when the tests end.
package proctest
