// Command apicheck keeps the record of this repository's exported API: one
// file per package in api/ (api/batchconn.txt, api/quicbatch.txt,
// api/wgbatch.txt, ...), one line per exported identifier, field and method,
// in the style of Go's own api/*.txt files. Run from the repository root:
//
//	go run ./internal/apicheck      # compare the code with api/; exit 1 on a difference
//	go run ./internal/apicheck -w   # rewrite api/ from the code
//
// Its test, TestAPIMatchesRecord, part of go test ./..., fails when the code
// and api/ disagree, so no exported identifier changes or disappears in a
// commit that does not also change its line in api/: an API change is one a
// reviewer sees. The packages recorded are those of every module in the
// repository (the root module and the nested ones, such as
// integration/wireguard) that other code may import: not commands, not
// internal/, not examples/.
//
// It walks each package's types with go/types, reading the compiler's export
// data (go list -export), for Linux, macOS and Windows. It needs only the
// standard library: golang.org/x/exp/apidiff would compare two versions of a
// package, which needs the old one built, and gorelease compares against the
// last published release, which there is not yet; a committed file is
// what a reviewer reads in the diff.
//
// Its tests also check that every module carries the LICENSE its zip needs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// regenerate is the command that rewrites the record; every message that
// reports a difference names it.
const regenerate = "go run ./internal/apicheck -w"

func main() {
	write := flag.Bool("w", false, "rewrite api/ from the code instead of comparing them")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./internal/apicheck [-w]\n\n"+
			"Compares the exported API of the repository's packages with its record in api/,\n"+
			"or with -w rewrites the record.\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	root, err := repoRoot()
	if err != nil {
		fatal(err)
	}
	apis, err := repoAPI(root, ports)
	if err != nil {
		fatal(err)
	}
	if *write {
		if err := writeRecord(root, apis); err != nil {
			fatal(err)
		}
		for _, a := range apis {
			fmt.Printf("wrote %s: %d lines (%s)\n", a.file(), len(a.lines), a.path)
		}
		return
	}
	diff, err := compare(root, apis, ports)
	if err != nil {
		fatal(err)
	}
	if diff != "" {
		fmt.Fprint(os.Stderr, diff)
		os.Exit(1)
	}
	fmt.Printf("api/ matches the exported API of %d packages\n", len(apis))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "apicheck:", err)
	os.Exit(1)
}

// repoRoot returns the root module's directory: the repository root.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the batchconn module: run from the repository root")
	}
	return filepath.Dir(gomod), nil
}

// An api is one package's recorded API.
type api struct {
	path, name string
	lines      []string
}

func (a api) file() string { return filepath.Join("api", a.name+".txt") }

// moduleDirs returns the directories under root that hold a go.mod, outside
// the directories the go command ignores (names starting with "." or "_",
// testdata). skipExamples leaves out those under root's examples/.
func moduleDirs(root string, skipExamples bool) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root {
			if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" ||
				(skipExamples && p == filepath.Join(root, "examples")) {
				return filepath.SkipDir
			}
		}
		if !d.IsDir() && name == "go.mod" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	return dirs, err
}

// repoAPI walks the public packages of every module under root on the ports
// ps, and merges the ports: a line that holds on all of them is written
// plainly, one that holds on some only as "pkg P (goos-goarch), ...", once
// per port.
func repoAPI(root string, ps []port) ([]api, error) {
	dirs, err := moduleDirs(root, true)
	if err != nil {
		return nil, err
	}
	var apis []api
	for _, dir := range dirs {
		paths, err := publicPackages(dir)
		if err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			continue
		}
		perPort := make([]map[string][]string, len(ps)) // port -> path -> lines
		names := map[string]string{}
		for i, p := range ps {
			pkgs, err := load(dir, p, paths)
			if err != nil {
				return nil, err
			}
			perPort[i] = map[string][]string{}
			for _, pkg := range pkgs {
				perPort[i][pkg.Path()] = features(pkg)
				names[pkg.Path()] = pkg.Name()
			}
		}
		for _, path := range paths {
			a := api{path: path, name: names[path]}
			count := map[string]int{}
			for i := range ps {
				for _, l := range perPort[i][path] {
					count[l]++
				}
			}
			for i, p := range ps {
				for _, l := range perPort[i][path] {
					if count[l] == len(ps) {
						if i == 0 {
							a.lines = append(a.lines, l)
						}
						continue
					}
					a.lines = append(a.lines, strings.Replace(l, "pkg "+path+", ", "pkg "+path+" ("+p.String()+"), ", 1))
				}
			}
			slices.Sort(a.lines)
			apis = append(apis, a)
		}
	}
	slices.SortFunc(apis, func(a, b api) int { return strings.Compare(a.path, b.path) })
	for i := 1; i < len(apis); i++ {
		if apis[i].name == apis[i-1].name {
			return nil, fmt.Errorf("packages %s and %s share the name %s, and so the file %s", apis[i-1].path, apis[i].path, apis[i].name, apis[i].file())
		}
	}
	return apis, nil
}

func header(a api) string {
	return fmt.Sprintf(`# The exported API of package %s (%s).
# One line per exported identifier, field and method, in the style of Go's
# own api/*.txt files; a line marked (goos-goarch) holds on that port only
# (of %s).
#
# go test ./internal/apicheck (part of go test ./...) fails when the code and
# this file disagree. When you mean to change the API, regenerate this file
# from the repository root, in the same commit, and say so in CHANGELOG.md:
#
#	%s
`, a.name, a.path, portList(), regenerate)
}

func portList() string {
	var s []string
	for _, p := range ports {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// writeRecord writes api/NAME.txt for every package and removes the files of
// packages that are gone.
func writeRecord(root string, apis []api) error {
	if err := os.MkdirAll(filepath.Join(root, "api"), 0o755); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, a := range apis {
		keep[a.file()] = true
		text := header(a) + "\n" + strings.Join(a.lines, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(root, a.file()), []byte(text), 0o644); err != nil {
			return err
		}
	}
	old, err := filepath.Glob(filepath.Join(root, "api", "*.txt"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if rel, _ := filepath.Rel(root, f); !keep[rel] {
			if err := os.Remove(f); err != nil {
				return err
			}
			fmt.Printf("removed %s: its package is gone\n", rel)
		}
	}
	return nil
}

// readRecord returns the feature lines of an api file: every line but
// comments and blank ones.
func readRecord(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var lines []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// compare returns, when the code's API (apis, walked on the ports ps)
// differs from api/, a report of every difference that ends with the command
// that rewrites the record; "" when they agree. When ps is one port, only
// the record's lines that hold there are compared.
func compare(root string, apis []api, ps []port) (string, error) {
	var b strings.Builder
	files := map[string]bool{}
	for _, a := range apis {
		files[a.file()] = true
		recorded, err := readRecord(filepath.Join(root, a.file()))
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(&b, "%s: missing: package %s has no API record\n", a.file(), a.path)
			continue
		} else if err != nil {
			return "", err
		}
		if len(ps) == 1 {
			recorded = onPort(recorded, a.path, ps[0])
		}
		added, removed := difference(a.lines, recorded), difference(recorded, a.lines)
		if len(added)+len(removed) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s does not match the exported API of %s:\n", a.file(), a.path)
		for _, l := range removed {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
		for _, l := range added {
			fmt.Fprintf(&b, "  + %s\n", l)
		}
	}
	old, err := filepath.Glob(filepath.Join(root, "api", "*.txt"))
	if err != nil {
		return "", err
	}
	for _, f := range old {
		if rel, _ := filepath.Rel(root, f); !files[rel] {
			fmt.Fprintf(&b, "%s: records a package that is gone (or is no longer public)\n", rel)
		}
	}
	if b.Len() == 0 {
		return "", nil
	}
	b.WriteString("(-: recorded in api/ but not in the code: removed or changed, which breaks callers;\n" +
		" +: in the code but not recorded: added.)\n" +
		"If the change is meant, regenerate the record from the repository root, commit it\n" +
		"with the change, and say it in CHANGELOG.md:\n\n\t" + regenerate + "\n")
	return b.String(), nil
}

// onPort returns the lines of a record of path that hold on p, as a walk of
// p alone writes them: the plain ones, and those marked (p) without the mark.
func onPort(lines []string, path string, p port) []string {
	plain, marked := "pkg "+path+", ", "pkg "+path+" ("+p.String()+"), "
	var out []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, plain):
			out = append(out, l)
		case strings.HasPrefix(l, marked):
			out = append(out, plain+strings.TrimPrefix(l, marked))
		}
	}
	return out
}

// difference returns the lines of a that are not in b.
func difference(a, b []string) []string {
	in := map[string]bool{}
	for _, l := range b {
		in[l] = true
	}
	var out []string
	for _, l := range a {
		if !in[l] {
			out = append(out, l)
		}
	}
	return out
}
