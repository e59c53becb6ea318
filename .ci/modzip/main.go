// Command modzip builds the module zip of every module in the repository,
// with golang.org/x/mod/zip (the code the go command uses to make the zips
// the module proxy serves and pkg.go.dev reads), lists it, and fails unless
// each zip holds, at its root, a LICENSE identical to the repository root's.
// A nested module's zip does not contain its parents' files, so each module
// needs a LICENSE of its own: pkg.go.dev shows no documentation for a module
// whose zip has no license it recognises.
//
//	cd .ci/modzip && go run . [-dir] [-v] REPO
//
// The zips are built from the files of the commit HEAD of REPO's git
// repository (git archive), as the proxy would build them from a tag there;
// -dir builds them from the working tree instead, untracked files and all.
// -v lists every file of every zip.
//
// A module is every go.mod outside the directories the go command ignores
// (names starting with "." or "_", testdata): those cannot hold a module that
// is published under this repository's path, so this tool's own module, in
// .ci, needs no LICENSE.
//
// It is a module of its own so that golang.org/x/mod stays out of the
// library's go.mod; .ci/run runs it.
package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// version is the version every zip is built as: any valid one will do, as
// nothing is published, and the files a zip holds do not depend on it.
const version = "v0.0.0"

func main() { os.Exit(run()) }

// run is main, returning the exit status, so that the deferred removal of
// the extracted tree runs on failure too.
func run() int {
	fromDir := flag.Bool("dir", false, "build the zips from the working tree, not from the commit HEAD")
	verbose := flag.Bool("v", false, "list every file of every zip")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: modzip [-dir] [-v] REPO")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "modzip:", err)
		return 1
	}
	repo, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		return fail(err)
	}
	license, err := os.ReadFile(filepath.Join(repo, "LICENSE"))
	if err != nil {
		return fail(fmt.Errorf("the repository root has no LICENSE: %w", err))
	}
	tree := repo
	if !*fromDir {
		// The files of the commit, as the module proxy would see them at a
		// tag there: git archive, which the go command also uses.
		tmp, err := os.MkdirTemp("", "modzip")
		if err != nil {
			return fail(err)
		}
		defer os.RemoveAll(tmp)
		cmd := exec.Command("sh", "-c", `git -C "$1" archive --format=tar HEAD | tar -x -C "$2"`, "sh", repo, tmp)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fail(fmt.Errorf("extracting the commit HEAD of %s (use -dir for a tree outside git): %w", repo, err))
		}
		tree = tmp
	}
	dirs, err := moduleDirs(tree)
	if err != nil {
		return fail(err)
	}
	failed := 0
	for _, dir := range dirs {
		if err := check(tree, dir, license, *verbose); err != nil {
			fmt.Printf("FAIL %v\n", err)
			failed++
		}
	}
	if failed > 0 {
		return fail(fmt.Errorf("%d of %d module zips failed", failed, len(dirs)))
	}
	fmt.Printf("ok: all %d module zips hold the repository's LICENSE\n", len(dirs))
	return 0
}

// moduleDirs returns the directories, relative to repo ("." for the root),
// that hold a go.mod, skipping those the go command ignores.
func moduleDirs(repo string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != repo && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && name == "go.mod" {
			rel, err := filepath.Rel(repo, filepath.Dir(p))
			if err != nil {
				return err
			}
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	return dirs, err
}

// check builds the zip of the module in tree/dir, lists it, and checks its
// LICENSE.
func check(tree, dir string, license []byte, verbose bool) error {
	gomod, err := os.ReadFile(filepath.Join(tree, dir, "go.mod"))
	if err != nil {
		return err
	}
	mpath := modfile.ModulePath(gomod)
	if mpath == "" {
		return fmt.Errorf("%s/go.mod: no module path", dir)
	}
	mv := module.Version{Path: mpath, Version: version}
	var buf bytes.Buffer
	if err := modzip.CreateFromDir(&buf, mv, filepath.Join(tree, dir)); err != nil {
		return fmt.Errorf("%s (%s): building its zip: %w", mpath, dir, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return fmt.Errorf("%s: reading its zip: %w", mpath, err)
	}
	prefix := mpath + "@" + version + "/"
	var names []string
	var got []byte
	for _, f := range zr.File {
		name := strings.TrimPrefix(f.Name, prefix)
		names = append(names, name)
		if name == "LICENSE" {
			if got, err = readAll(f); err != nil {
				return fmt.Errorf("%s: reading LICENSE from its zip: %w", mpath, err)
			}
		}
	}
	sort.Strings(names)
	fmt.Printf("%s (%s): %d files, %d bytes zipped\n", mpath, dir, len(names), buf.Len())
	fmt.Printf("  %s\n", strings.Join(summarise(names, verbose), "\n  "))
	switch {
	case got == nil:
		return fmt.Errorf("%s (%s): its zip holds no LICENSE at its root: add a copy of the repository's LICENSE to %s/", mpath, dir, dir)
	case !bytes.Equal(got, license):
		return fmt.Errorf("%s (%s): its LICENSE differs from the repository root's", mpath, dir)
	}
	return nil
}

// summarise lists the files at the zip's root and, for each directory
// below it, how many files it holds; verbose lists every file.
func summarise(names []string, verbose bool) []string {
	if verbose {
		return names
	}
	var out []string
	counts := map[string]int{}
	var order []string
	for _, n := range names {
		top, _, nested := strings.Cut(n, "/")
		if !nested {
			out = append(out, n)
			continue
		}
		if counts[top] == 0 {
			order = append(order, top)
		}
		counts[top]++
	}
	for _, d := range order {
		out = append(out, fmt.Sprintf("%s/ (%d files)", d, counts[d]))
	}
	return out
}

func readAll(f *zip.File) ([]byte, error) {
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	if len(b) == 1<<20 {
		return nil, errors.New("LICENSE is over 1 MiB")
	}
	return b, nil
}
