//go:build linux && !batchconn_sendmsg

package batchconn_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestContractR8RecvmsgPathPassesTheContract runs the receive contract tests
// again, built with the batchconn_sendmsg tag: the one-recvmsg-per-message
// path other Unix systems take, on this kernel. (TestContractC15BuildsEverywhere
// builds the Windows, macOS and FreeBSD files.)
func TestContractR8RecvmsgPathPassesTheContract(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds and reruns the package; skipped in -short mode")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skipf("no go command at %s: %v", goTool, err)
	}
	cmd := exec.Command(goTool, "test", "-count=1", "-tags", "batchconn_sendmsg", "-run", "ContractR", ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -tags batchconn_sendmsg -run ContractR: %v\n%s", err, out)
	}
}
