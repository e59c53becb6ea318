//go:build linux

package batchconn

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/batchconn/batchconn/internal/testnet"
)

// TestIfreqLayout checks the ifreq the zone table's ioctls use against
// x/sys's: its size, and that SIOCGIFNAME and SIOCGIFINDEX find lo where
// x/sys finds it.
func TestIfreqLayout(t *testing.T) {
	if got, want := unsafe.Sizeof(ifreq{}), unsafe.Sizeof(unix.Ifreq{}); got != want {
		t.Fatalf("sizeof(ifreq) = %d, x/sys says %d", got, want)
	}
	if off := unsafe.Offsetof(ifreq{}.index); off != unix.IFNAMSIZ {
		t.Fatalf("ifr_ifindex at %d, want %d", off, unix.IFNAMSIZ)
	}
	c, err := New(testnet.ListenUDP(t, "udp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	req, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, req); err != nil {
		t.Skipf("no lo: %v", err)
	}
	lo := req.Uint32()
	look := newZoneLookup(c.rc)
	if id, ok := look.index("lo"); !ok || id != lo {
		t.Errorf("index(lo) = %d, %v; x/sys says %d", id, ok, lo)
	}
	if name, ok := look.name(lo); !ok || name != "lo" {
		t.Errorf("name(%d) = %q, %v; want lo", lo, name, ok)
	}
	if same, ok := look.is(lo, "lo"); !same || !ok {
		t.Errorf("is(%d, lo) = %v, %v", lo, same, ok)
	}
	for _, name := range []string{"", "no-such-if0", "a-name-longer-than-ifnamsiz"} {
		if id, ok := look.index(name); ok {
			t.Errorf("index(%q) = %d, want none", name, id)
		}
	}
	if name, ok := look.name(1 << 31); ok {
		t.Errorf("name(1<<31) = %q, want none", name)
	}
}

// TestContractR5ZoneLookAllocatesNothing: looking at the names again (once
// per zoneRecheck on a Conn that met a zone) allocates nothing while no
// interface was renamed.
func TestContractR5ZoneLookAllocatesNothing(t *testing.T) {
	c, err := New(testnet.ListenUDP(t, "udp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	z := &c.zones
	if name := z.name(1); name == "" {
		t.Fatal("no name for interface 1")
	}
	if _, ok := z.index("lo"); !ok {
		t.Skip("no lo")
	}
	allocs := testing.AllocsPerRun(100, func() {
		z.next.Store(0)
		z.tick()
	})
	if allocs != 0 {
		t.Errorf("a look at the names allocates %v times, want 0", allocs)
	}
}
