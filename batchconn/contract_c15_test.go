package batchconn_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestContractC15BuildsEverywhere builds the package for one port of each
// platform file: send_linux.go (32-bit and 64-bit), send_unix.go (macOS,
// FreeBSD) and send_other.go (Windows). CI builds every first-class port.
func TestContractC15BuildsEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling takes a while; skipped in -short mode")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to cross-compile with: %v", err)
	}
	ports := []string{"linux/arm", "linux/arm64", "darwin/arm64", "freebsd/amd64", "windows/amd64"}
	for _, p := range ports {
		t.Run(p, func(t *testing.T) {
			goos, goarch, _ := strings.Cut(p, "/")
			cmd := exec.Command(goTool, "build", "-o", os.DevNull, ".")
			cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOOS=%s GOARCH=%s go build: %v\n%s", goos, goarch, err, out)
			}
		})
	}
}
