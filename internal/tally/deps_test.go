package tally_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the tally pure: the standard library and the
// election domain only, never storage, transport or generated API code.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const module = "github.com/doorstep-vote/doorstep/"
	allowed := map[string]bool{
		module + "internal/election": true,
		module + "internal/tally":    true,
	}
	forbidden := []string{"go.etcd.io/bbolt", "google.golang.org/grpc", "google.golang.org/protobuf", module + "api/"}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != module+"internal/tally" {
		t.Fatalf("go list did not list this package last: %q", deps)
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("tally depends on %s: it must not touch storage, transport or the API", dep)
			}
		}
		if !allowed[dep] {
			t.Errorf("tally depends on %s: only the standard library and internal/election are allowed", dep)
		}
	}
}
