package batchconn_test

import (
	"os"
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
