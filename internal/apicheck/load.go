package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// A port is a GOOS/GOARCH pair whose API is walked. The API may differ
// between them (a constant's value, a function that exists on Linux only);
// a line that holds on some of them only is written with their names, as
// Go's api files write "pkg syscall (linux-386), ...".
type port struct{ goos, goarch string }

func (p port) String() string { return p.goos + "-" + p.goarch }

// ports are one port per family of files batchconn has (_linux, _unix and
// _other, the Windows fallback): Linux, macOS, Windows.
var ports = []port{{"linux", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"}}

// goList runs the go command's list in dir for p with args, and decodes the
// JSON stream of packages it prints.
func goList(dir string, p port, args ...string) ([]listed, error) {
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS="+p.goos, "GOARCH="+p.goarch, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s (in %s, %s): %v\n%s", strings.Join(args, " "), dir, p, err, stderr.Bytes())
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, l)
	}
}

type listed struct {
	ImportPath, Name, Dir, Export string
	Error                         *struct{ Err string }
}

// publicPackages returns the import paths of the packages in the module in
// dir that other modules can import and are meant to: not commands, not
// under internal/, not examples (the module's examples/ directory holds
// programs to read, not API).
func publicPackages(dir string) ([]string, error) {
	pkgs, err := goList(dir, ports[0], "-e", "-json=ImportPath,Name,Dir,Error", "./...")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, p := range pkgs {
		if p.Error != nil {
			return nil, fmt.Errorf("%s: %s", p.ImportPath, p.Error.Err)
		}
		rel, err := filepath.Rel(dir, p.Dir)
		if err != nil {
			return nil, err
		}
		elems := strings.Split(filepath.ToSlash(rel), "/")
		if p.Name == "main" || slices.Contains(strings.Split(p.ImportPath, "/"), "internal") || elems[0] == "examples" {
			continue
		}
		paths = append(paths, p.ImportPath)
	}
	return paths, nil
}

// load type-checks nothing itself: it has the go command compile paths for
// p (go list -export, which reuses the build cache) and reads the packages'
// types from the compiler's export data, as go/packages does. A package
// that has no files for p (a Linux-only one, on Windows) is left out.
func load(dir string, p port, paths []string) ([]*types.Package, error) {
	pkgs, err := goList(dir, p, append([]string{"-e", "-export", "-deps", "-json=ImportPath,Export,Error"}, paths...)...)
	if err != nil {
		return nil, err
	}
	exports := map[string]string{}
	absent := map[string]bool{}
	for _, l := range pkgs {
		if l.Error != nil {
			if slices.Contains(paths, l.ImportPath) && strings.Contains(l.Error.Err, "build constraints exclude all Go files") {
				absent[l.ImportPath] = true
				continue
			}
			return nil, fmt.Errorf("%s (%s): %s", l.ImportPath, p, l.Error.Err)
		}
		exports[l.ImportPath] = l.Export
	}
	paths = slices.DeleteFunc(slices.Clone(paths), func(path string) bool { return absent[path] })
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	var out []*types.Package
	for _, path := range paths {
		pkg, err := imp.Import(path)
		if err != nil {
			return nil, fmt.Errorf("reading the export data of %s (%s): %w", path, p, err)
		}
		out = append(out, pkg)
	}
	return out, nil
}
