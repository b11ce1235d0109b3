// Package demo plays a rainy canvassing day end to end, in one process, so
// that anyone can see Doorstep work with no set-up: a real tallyd on
// loopback, the committee creating the example election, importing its
// roster and opening it, four canvassers' devices joining with real
// enrollment codes and walking their buildings at once, each through its own
// flakynet link that drops and returns, then the committee settling the
// contested unit, closing the election and reading the tally.
//
// The day has two sources of chance, kept apart on purpose. The script
// (who walks where, who is not home, what every owner answers, who changes
// their mind, which door gets two differing ballots) is drawn from
// Config.Seed alone. The network (when each link drops, how chaos cuts
// connections, sync jitter) is drawn from Config.NetSeed and from real
// timing. Only delivery depends on the network, so for a given Seed the
// final tally is the same byte for byte, whatever the network did; Run
// checks it against the tally the script predicts and fails if they differ.
//
// The package takes its inputs from Config and writes plain progress lines;
// parsing flags and rendering the tally for people belong to the command
// (internal/cli).
package demo
