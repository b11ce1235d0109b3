package audit_test

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencies keeps the verifier independent of the server: an
// auditor's copy needs no store, no server, no bbolt and no gRPC. The
// generated API package carries gRPC service stubs, so gRPC is checked
// among direct imports; storage and the server among all dependencies.
func TestDependencies(t *testing.T) {
	const module = "github.com/doorstep-vote/doorstep/"
	never := []string{"go.etcd.io/bbolt", module + "internal/store", module + "internal/server", module + "internal/tallyd"}
	direct := append([]string{"google.golang.org/grpc"}, never...)

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range direct {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s; the record verifier must not", name, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no package files to check")
	}

	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != module+"internal/audit" {
		t.Fatalf("go list did not list this package last: %q", deps)
	}
	for _, dep := range deps {
		for _, bad := range never {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("the record package depends on %s", dep)
			}
		}
	}
}
