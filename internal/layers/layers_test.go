package layers_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"strings"
	"testing"
)

const module = "github.com/doorstep-vote/doorstep"

// pkg is what go list says of one package: its own imports and every
// package it depends on, tests left out.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// rule forbids packages matching from, directly (Imports) or through any
// chain of imports (Deps), from depending on the packages in forbid; with
// only set, every dependency outside the standard library must be in it.
type rule struct {
	name   string
	from   string // an import path; a trailing "/..." matches the tree below
	except []string
	direct bool
	forbid []string
	only   []string
}

var layerRules = []rule{
	{name: "bbolt is touched only by the server's store and the device's own storage",
		from: module + "/...", except: []string{module + "/internal/store", module + "/internal/device"},
		direct: true, forbid: []string{"go.etcd.io/bbolt"}},
	{name: "the domain imports nothing",
		from: module + "/internal/election", only: []string{}},
	{name: "the tally imports only the domain",
		from: module + "/internal/tally", only: []string{module + "/internal/election"}},
	{name: "the rules are pure",
		from:   module + "/internal/rules",
		forbid: []string{"go.etcd.io/bbolt", module + "/internal/store", module + "/internal/server", module + "/internal/tallyd", module + "/internal/client", module + "/internal/device"}},
	{name: "the rules never call out",
		from: module + "/internal/rules", direct: true, forbid: []string{"google.golang.org/grpc", "net", "os"}},
	{name: "the signature rule needs only its curve library",
		from: module + "/internal/zip215", only: []string{"github.com/oasisprotocol/curve25519-voi/...", "golang.org/x/crypto/...", "golang.org/x/sys/..."}},
	{name: "the envelope knows nothing of decisions",
		from: module + "/internal/signed", forbid: []string{module + "/internal/tally", module + "/internal/rules", "go.etcd.io/bbolt"}},
	// The generated API package holds gRPC's service stubs too, so gRPC is
	// a dependency of anything that reads the messages: the verifier must
	// just never call it itself.
	{name: "the verifier needs neither server nor store",
		from:   module + "/internal/audit",
		forbid: []string{"go.etcd.io/bbolt", module + "/internal/store", module + "/internal/server", module + "/internal/tallyd", module + "/internal/client", module + "/internal/device"}},
	{name: "the verifier makes no calls",
		from: module + "/internal/audit", direct: true, forbid: []string{"google.golang.org/grpc"}},
	{name: "the ballot log is below storage and transport",
		from: module + "/internal/ballotlog", direct: true, forbid: []string{"go.etcd.io/bbolt", "google.golang.org/grpc", module + "/internal/store", module + "/internal/server"}},
	{name: "the words import nothing",
		from: module + "/internal/i18n", only: []string{}},
	{name: "the front ends reach the server only through what tallyd hands them",
		from:   module + "/internal/dashboard",
		forbid: []string{"go.etcd.io/bbolt", module + "/internal/store", module + "/internal/server", module + "/internal/tallyd", module + "/internal/client", module + "/internal/device"}},
	{name: "the phone app is its files",
		from: module + "/internal/phoneapp", only: []string{}},
	{name: "the notice and the live views only render",
		from: module + "/internal/notice", forbid: []string{"go.etcd.io/bbolt", "google.golang.org/grpc", module + "/internal/store", module + "/internal/server", module + "/internal/client"}, direct: true},
	{name: "the live views only render",
		from: module + "/internal/watchview", forbid: []string{"go.etcd.io/bbolt", "google.golang.org/grpc", module + "/internal/store", module + "/internal/server", module + "/internal/client"}, direct: true},
	{name: "reading a tally for people is pure",
		from: module + "/internal/tallyview", direct: true, forbid: []string{"go.etcd.io/bbolt", "google.golang.org/grpc", "net", "os", module + "/internal/store", module + "/internal/server", module + "/internal/client"}},
	{name: "the browser harness is for tests only",
		from: module + "/...", except: []string{module + "/internal/browsertest"}, forbid: []string{module + "/internal/browsertest", "github.com/chromedp/..."}},
	{name: "nothing under internal imports cmd",
		from: module + "/internal/...", forbid: []string{module + "/cmd/..."}},
}

// TestLayers runs go list, whose reading of the sources go test does not
// see: after changing imports, run it with -count=1 (CI always runs fresh).
func TestLayers(t *testing.T) {
	pkgs := listPackages(t)
	for _, r := range layerRules {
		t.Run(r.name, func(t *testing.T) {
			checked, bad := check(r, pkgs)
			if checked == 0 {
				t.Fatalf("no package matches %s: the rule checks nothing", r.from)
			}
			for _, b := range bad {
				t.Error(b)
			}
		})
	}
}

// TestEveryRuleBites gives each rule a package graph that breaks it, so a
// rule that passes on the real graph is a rule that held.
func TestEveryRuleBites(t *testing.T) {
	for _, r := range layerRules {
		t.Run(r.name, func(t *testing.T) {
			from := strings.TrimSuffix(r.from, "/...")
			if r.from != from {
				from += "/internal/somewhere"
			}
			bad := "example.com/not/allowed"
			if len(r.forbid) > 0 {
				bad = strings.TrimSuffix(r.forbid[0], "/...") + "/x"
				if !matches(r.forbid[0], bad) {
					bad = r.forbid[0]
				}
			}
			p := pkg{ImportPath: from, Imports: []string{"fmt", bad}, Deps: []string{"fmt", bad}}
			if _, found := check(r, []pkg{p}); len(found) == 0 {
				t.Errorf("%s importing %s breaks no rule", from, bad)
			}
		})
	}
}

// check applies r to pkgs: how many packages it covered, and what breaks it.
func check(r rule, pkgs []pkg) (checked int, bad []string) {
	for _, p := range pkgs {
		if !matches(r.from, p.ImportPath) || contains(r.except, p.ImportPath) {
			continue
		}
		checked++
		deps := p.Deps
		if r.direct {
			deps = p.Imports
		}
		for _, d := range deps {
			for _, f := range r.forbid {
				if matches(f, d) {
					bad = append(bad, p.ImportPath+" depends on "+d)
				}
			}
			if r.only != nil && !standard(d) && d != p.ImportPath && !contains(r.only, d) {
				bad = append(bad, p.ImportPath+" depends on "+d+"; it may depend only on the standard library and "+strings.Join(r.only, ", "))
			}
		}
	}
	return checked, bad
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list packages: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-json=ImportPath,Imports,Deps", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("read go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func matches(pattern, importPath string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return importPath == base || strings.HasPrefix(importPath, base+"/")
	}
	return importPath == pattern
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if matches(x, s) {
			return true
		}
	}
	return false
}

// standard reports whether an import path is the standard library's: its
// first element has no dot.
func standard(importPath string) bool {
	first, _, _ := strings.Cut(importPath, "/")
	return !strings.Contains(first, ".") && path.IsAbs("/"+first)
}
