package zip215

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the rule a leaf: it needs only curve25519-voi
// (and what that needs), never storage, gRPC, the server or any other
// Doorstep package, so every side can import it.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	const self = "github.com/doorstep-vote/doorstep/internal/zip215"
	if len(deps) == 0 || deps[len(deps)-1] != self {
		t.Fatalf("go list did not list this package last: %q", deps)
	}
	allowed := []string{"github.com/oasisprotocol/curve25519-voi/", "golang.org/x/crypto/", "golang.org/x/sys/"}
	for _, dep := range deps[:len(deps)-1] {
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(dep, a)
		}
		if !ok {
			t.Errorf("zip215 depends on %s", dep)
		}
	}
}
