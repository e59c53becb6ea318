package batchconn_test

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestREADMEQuickstartIsTheExample keeps the README's quickstart honest: its
// main function must be the body of Example, which go test compiles and runs.
func TestREADMEQuickstartIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skipf("no README beside the package: %v", err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	quick := between(string(readme), "func main() {\n", "\n}\n```")
	body := between(string(example), "func Example() {\n", "\n\t// Output:")
	if quick == "" || body == "" {
		t.Fatalf("quickstart found: %v; Example body found: %v", quick != "", body != "")
	}
	if strings.TrimSpace(quick) != strings.TrimSpace(body) {
		t.Errorf("the README quickstart differs from Example:\nREADME:\n%s\nExample:\n%s", quick, body)
	}
}

// between returns the text after the first start and before the next end.
func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	inner, _, ok := strings.Cut(after, end)
	if !ok {
		return ""
	}
	return inner
}

// contractRule matches a rule's definition in CONTRACT.md: "**C6 A failing
// message ends the call.**" defines C6.
var contractRule = regexp.MustCompile(`\*\*([CR][0-9]+b?)[ *]`)

// contractMention matches any rule id in CONTRACT.md's text ("per C6").
var contractMention = regexp.MustCompile(`\b[CR][0-9]+b?\b`)

// contractTest matches a test named after a rule: TestContractC5bWaitWritable
// names C5b, TestContractC14KillSwitch names C14. Tests of the unnumbered
// Errors section (TestContractErrorsShape) name no rule.
var contractTest = regexp.MustCompile(`(?m)^func (TestContract([CR][0-9]+b?)[A-Z_][A-Za-z0-9_]*)\(`)

// TestContractRulesAndTestsMatch keeps CONTRACT.md and the tests in step:
// every rule it defines (C1–C15, C5b, R1–R9) has at least one test named
// TestContract<rule>... somewhere in the module, every rule it mentions is
// one it defines, and every test named after a rule names one it defines.
func TestContractRulesAndTestsMatch(t *testing.T) {
	doc, err := os.ReadFile("../CONTRACT.md")
	if err != nil {
		t.Skipf("no CONTRACT.md beside the package: %v", err)
	}
	rules := map[string]bool{}
	for _, m := range contractRule.FindAllStringSubmatch(string(doc), -1) {
		rules[m[1]] = true
	}
	want := []string{"C5b"}
	for i := 1; i <= 15; i++ {
		want = append(want, "C"+strconv.Itoa(i))
	}
	for i := 1; i <= 9; i++ {
		want = append(want, "R"+strconv.Itoa(i))
	}
	for _, id := range want {
		if !rules[id] {
			t.Errorf("CONTRACT.md does not define rule %s (want a line starting **%s ...)", id, id)
		}
	}
	for _, id := range contractMention.FindAllString(string(doc), -1) {
		if !rules[id] {
			t.Errorf("CONTRACT.md mentions rule %s but defines no such rule", id)
		}
	}

	tests := map[string][]string{} // rule id -> tests named after it
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != ".." && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range contractTest.FindAllStringSubmatch(string(src), -1) {
			tests[m[2]] = append(tests[m[2]], m[1])
			if !rules[m[2]] {
				t.Errorf("%s: %s is named after rule %s, which CONTRACT.md does not define", path, m[1], m[2])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The receive rules R1–R9 are checked once their tests exist: the test
	// of R1 is the sign that the receive half is implemented. Until then a
	// missing R test is expected, and this check turns on by itself with
	// the first TestContractR1.
	receiveTested := len(tests["R1"]) > 0
	if !receiveTested {
		t.Log("no TestContractR1 yet: the receive rules R1–R9 are not required to have tests")
	}
	for _, id := range slices.Sorted(maps.Keys(rules)) {
		if strings.HasPrefix(id, "R") && !receiveTested {
			continue
		}
		if len(tests[id]) == 0 {
			t.Errorf("rule %s of CONTRACT.md has no test named TestContract%s...", id, id)
		}
	}
}

// quicbatchImport is the import line the README's quic-go programs show.
const quicbatchImport = `quicbatch "github.com/batchconn/batchconn/integration/quic"`

// TestREADMEProgramsCompile builds every complete program the README shows
// (each ```go block that starts with "package main") as it stands, so that
// what a reader copies compiles. The programs are laid over the module with
// -overlay, as if they sat in a directory of it, so they build against this
// checkout and its go.sum without touching the tree.
func TestREADMEProgramsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("building the README's programs (with quic-go) takes a while; skipped in -short mode")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skipf("no README beside the package: %v", err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command in PATH: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var programs []string
	for _, block := range strings.Split(string(readme), "```go\n")[1:] {
		if code, _, _ := strings.Cut(block, "```\n"); strings.HasPrefix(code, "package main\n") {
			programs = append(programs, code)
		}
	}
	quic := 0
	for _, p := range programs {
		if strings.Contains(p, quicbatchImport) {
			quic++
		}
	}
	if len(programs) < 3 || quic < 2 {
		t.Fatalf("the README shows %d complete programs, %d of them with quic-go; want the quickstart and a quic-go client and server importing %s",
			len(programs), quic, quicbatchImport)
	}
	dir := t.TempDir()
	for i, p := range programs {
		t.Run("program "+strconv.Itoa(i+1), func(t *testing.T) {
			src := filepath.Join(dir, "main"+strconv.Itoa(i)+".go")
			if err := os.WriteFile(src, []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
			// A path inside the module that does not exist on disk.
			virtual := filepath.Join(root, ".readme-program", strconv.Itoa(i), "main.go")
			overlay, err := json.Marshal(map[string]map[string]string{"Replace": {virtual: src}})
			if err != nil {
				t.Fatal(err)
			}
			ov := filepath.Join(dir, "overlay"+strconv.Itoa(i)+".json")
			if err := os.WriteFile(ov, overlay, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(goTool, "build", "-o", os.DevNull, "-overlay", ov, virtual)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build of the README's program %d: %v\n%s\nprogram:\n%s", i+1, err, out, p)
			}
		})
	}
}

// TestExamplesNeedNoIPv6 keeps the module's examples off IPv6: an Example
// cannot skip, so one that listens on [::1] on a host without IPv6 calls
// log.Fatal and takes every other result of its test binary with it. CI also
// runs the suite in a network namespace without IPv6; this catches it on
// hosts with IPv6 too.
func TestExamplesNeedNoIPv6(t *testing.T) {
	ipv6 := regexp.MustCompile(`"udp6"|"\[::|IPv6Loopback|IPv6Unspecified|net\.IPv6`)
	found := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "example_test.go" {
			return err
		}
		found++
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if ipv6.MatchString(line) {
				t.Errorf("%s:%d uses IPv6, which not every host has: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("found no example_test.go in the module")
	}
}
