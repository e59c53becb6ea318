package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryModuleHasTheLicense checks that the repository's LICENSE is Go's
// own BSD-3-Clause text (with the copyright line and the "Neither the name
// of" clause naming this project) and that every module directory holds a
// copy of it: a nested module's zip holds none of its parents' files, and
// pkg.go.dev shows nothing of a module without a license. .ci/modzip checks
// the zips themselves.
func TestEveryModuleHasTheLicense(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	license, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	if goLicense, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "LICENSE")); err != nil {
		t.Logf("cannot compare with Go's LICENSE: %v", err)
	} else {
		want := bytes.Replace(goLicense, []byte("Copyright 2009 The Go Authors."), []byte("Copyright 2026 The batchconn Authors."), 1)
		want = bytes.Replace(want, []byte("Neither the name of Google LLC nor"), []byte("Neither the name of the copyright holder nor"), 1)
		if !bytes.Equal(license, want) {
			t.Errorf("LICENSE is not Go's BSD-3-Clause text with this project's copyright line")
		}
	}
	dirs, err := moduleDirs(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 2 {
		t.Fatalf("found the modules %v; want the root and the nested ones", dirs)
	}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(root, dir)
		got, err := os.ReadFile(filepath.Join(dir, "LICENSE"))
		switch {
		case err != nil:
			t.Errorf("module %s has no LICENSE (%v): copy the repository's LICENSE into it", rel, err)
		case !bytes.Equal(got, license):
			t.Errorf("%s/LICENSE differs from the repository's LICENSE", rel)
		}
	}
}
