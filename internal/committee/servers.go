package committee

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/doorstep-vote/doorstep/internal/atomicfile"
	"github.com/doorstep-vote/doorstep/internal/servercert"
)

// ServersFile in the committee folder keeps the TLS pin of each tally
// server this machine has talked to, by address.
const ServersFile = "servers.json"

// ErrServerPinChanged means a server shows another TLS certificate than
// the one this machine pinned on first contact.
var ErrServerPinChanged = errors.New("the tally server's TLS certificate is not the one this committee machine saw before: it may not be your server; stop, and ask the server's operator whether its certificate was replaced")

// PinChangedError is ErrServerPinChanged with the pins: the one kept for
// Addr in the file Path, and the one given now.
type PinChangedError struct {
	Addr, Kept, Given, Path string
}

func (e *PinChangedError) Error() string {
	return fmt.Sprintf("%v (kept %s, given %s); if the operator did replace it, remove %s from %s", ErrServerPinChanged, e.Kept, e.Given, e.Addr, e.Path)
}

func (e *PinChangedError) Is(target error) bool { return target == ErrServerPinChanged }

// UnreachableError means the server at Addr could not be reached on
// first contact, to learn its TLS certificate.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the tally server at %s to learn its TLS certificate: check --server or DOORSTEP_SERVER and that tallyd is running: %v", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ServerPin returns the pin this machine trusts for the server at addr.
// want, when set, is the pin the operator gave (tallyd prints it at
// start): it must agree with any pin already kept. With neither, the
// server's pin is learned on this first contact (learned is true: tell
// the person, who can compare it with the one tallyd printed) and kept
// from then on.
func ServerPin(ctx context.Context, dir, addr, want string) (pin string, learned bool, err error) {
	if want != "" && want != servercert.Plaintext {
		if err := servercert.CheckPin(want); err != nil {
			return "", false, err
		}
	}
	path := filepath.Join(dir, ServersFile)
	known, err := readServers(path)
	if err != nil {
		return "", false, err
	}
	if have, ok := known[addr]; ok {
		if want != "" && want != have {
			return "", false, &PinChangedError{Addr: addr, Kept: have, Given: want, Path: path}
		}
		return have, false, nil
	}
	pin = want
	if pin == "" {
		if pin, err = servercert.Fetch(ctx, addr); err != nil {
			return "", false, &UnreachableError{Addr: addr, Err: err}
		}
		learned = true
	}
	if known == nil {
		known = map[string]string{}
	}
	known[addr] = pin
	data, err := json.MarshalIndent(known, "", "  ")
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("committee folder: %w", err)
	}
	if err := atomicfile.Replace(path, append(data, '\n')); err != nil {
		return "", false, fmt.Errorf("keep the server's TLS pin: %w", err)
	}
	return pin, learned, nil
}

func readServers(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): restore it, or remove it to trust servers anew on first contact", path, err)
	}
	return m, nil
}
