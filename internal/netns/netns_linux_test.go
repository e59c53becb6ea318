package netns

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("network namespaces need root, running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("network namespaces need the ip command: %v", err)
	}
}

// A pair's names, addresses and MTU are what New says, its links run, and
// Remove deletes it (twice is fine).
func TestNewMakesAPairAndRemoveDeletesIt(t *testing.T) {
	requireRoot(t)
	p, err := New("netnstest", 1400)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Remove() })
	for _, h := range []*Host{p.A, p.B} {
		if want := fmt.Sprintf("netnstest-%d-", os.Getpid()); !strings.HasPrefix(h.Name, want) {
			t.Errorf("namespace %s, want it to start %s", h.Name, want)
		}
		var ifi *net.Interface
		var addrs []net.Addr
		err := h.Run(func() (err error) {
			if ifi, err = net.InterfaceByName(h.Link); err != nil {
				return err
			}
			addrs, err = ifi.Addrs()
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if ifi.MTU != 1400 || ifi.Flags&net.FlagRunning == 0 || ifi.HardwareAddr.String() != h.MAC {
			t.Errorf("%s: %s has MTU %d, flags %v, address %v; want 1400, running, %s", h.Name, h.Link, ifi.MTU, ifi.Flags, ifi.HardwareAddr, h.MAC)
		}
		if got := fmt.Sprint(addrs); !strings.Contains(got, h.Addr4.String()+"/24") || h.Addr6.IsValid() && !strings.Contains(got, h.Addr6.String()+"/64") {
			t.Errorf("%s: addresses %s, want %v and %v", h.Name, got, h.Addr4, h.Addr6)
		}
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Host{p.A, p.B} {
		if _, err := os.Stat("/run/netns/" + h.Name); err == nil {
			t.Errorf("%s still exists after Remove", h.Name)
		}
	}
	if err := p.Remove(); err != nil {
		t.Errorf("a second Remove: %v", err)
	}
}

// A failing New leaves nothing behind and says what failed.
func TestNewThatFailsRemovesWhatItMade(t *testing.T) {
	requireRoot(t)
	// An MTU below IPv6's minimum (1280): the link is made, its IPv6
	// address is refused (or, without IPv6, the pair is fine).
	p, err := New("netnsfail", 100)
	if err == nil && p.A.Addr6.IsValid() {
		p.Remove()
		t.Fatal("New with MTU 100 and IPv6 succeeded")
	}
	if err != nil && !strings.Contains(err.Error(), "ip -n netnsfail-") {
		t.Errorf("New with MTU 100: %v, want the ip command that failed and what it said", err)
	}
	if p != nil {
		p.Remove()
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if mine := fmt.Sprintf("netnsfail-%d-", os.Getpid()); strings.Contains(string(out), mine) {
		t.Errorf("namespaces %s* left behind:\n%s", mine, out)
	}
}

func TestRemoveStaleDeletesOnlyNamespacesOfDeadProcesses(t *testing.T) {
	requireRoot(t)
	// 99999999 is above the kernel's PID_MAX_LIMIT (4194304), so no process
	// has it.
	dead := "netnstest-99999999-1-a"
	alive := fmt.Sprintf("netnstest-%d-999999-a", os.Getpid())
	other := "othertest-99999999-1-a" // another prefix's
	for _, name := range []string{dead, alive, other} {
		if err := Command("ip", "netns", "add", name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Command("ip", "netns", "del", name) })
	}
	removeStale("netnstest")
	if _, err := os.Stat("/run/netns/" + dead); err == nil {
		t.Errorf("%s, made by a process that no longer runs, was not removed", dead)
	}
	for _, name := range []string{alive, other} {
		if _, err := os.Stat("/run/netns/" + name); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
}
