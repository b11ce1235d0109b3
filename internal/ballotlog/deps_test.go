package ballotlog_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package free of storage and transport: the server's
// store calls it, never the other way round, and the auditor's verifier
// uses it with neither.
func TestImports(t *testing.T) {
	forbidden := []string{
		"go.etcd.io/bbolt",
		"google.golang.org/grpc",
		"github.com/doorstep-vote/doorstep/internal/store",
		"github.com/doorstep-vote/doorstep/internal/server",
	}
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
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s; ballotlog must not depend on storage or transport", name, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no package files to check")
	}
}
