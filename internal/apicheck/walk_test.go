package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestFeaturesMatchGoAPIFiles checks the walker against Go's own record:
// for standard library packages that between them have every kind of
// feature (constants typed and untyped, variables, functions, structs with
// fields and embedded fields, promoted methods, interfaces embedding
// interfaces, func and chan types, generics), it must write exactly the lines
// $GOROOT/api/go1*.txt hold for them, less what api/except.txt removed.
func TestFeaturesMatchGoAPIFiles(t *testing.T) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	apiDir := filepath.Join(strings.TrimSpace(string(out)), "api")
	files, err := filepath.Glob(filepath.Join(apiDir, "go1*.txt"))
	if err != nil || len(files) == 0 {
		t.Skipf("no Go api files in %s (%v): this Go installation lacks them", apiDir, err)
	}
	except := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(apiDir, "except.txt")); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			except[l] = true
		}
	}
	issue := regexp.MustCompile(` #\d+$`) // newer files name the proposal
	pkgs := []string{"bufio", "context", "errors", "io", "net/netip", "sync", "sync/atomic", "time", "container/list", "iter"}
	want := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			l = issue.ReplaceAllString(l, "")
			if except[l] || strings.Contains(l, "//deprecated") {
				continue
			}
			for _, p := range pkgs {
				if strings.HasPrefix(l, "pkg "+p+", ") {
					want[p] = append(want[p], l)
				}
			}
		}
	}
	loaded, err := load(".", ports[0], pkgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range loaded {
		w := want[pkg.Path()]
		slices.Sort(w)
		w = slices.Compact(w)
		got := features(pkg)
		for _, l := range difference(got, w) {
			t.Errorf("written, but not in Go's api files: %s", l)
		}
		for _, l := range difference(w, got) {
			t.Errorf("in Go's api files, but not written: %s", l)
		}
		t.Logf("%s: %d lines", pkg.Path(), len(got))
	}
}

func TestLoadLeavesOutAPackageAbsentOnAPort(t *testing.T) {
	dir := filepath.Join("testdata", "linuxonly")
	for _, tc := range []struct {
		p    port
		want int
	}{{port{"linux", "amd64"}, 1}, {port{"windows", "amd64"}, 0}} {
		pkgs, err := load(dir, tc.p, []string{"example.com/linuxonly"})
		if err != nil || len(pkgs) != tc.want {
			t.Errorf("load on %s = %d packages, %v; want %d, nil", tc.p, len(pkgs), err, tc.want)
		}
	}
}
