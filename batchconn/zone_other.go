//go:build !linux

package batchconn

import (
	"net"
	"syscall"
)

// netZones looks interfaces up through the net package, which allocates;
// the zone table asks only when it meets an interface it does not hold,
// and once per zoneRecheck for each it holds.
type netZones struct{}

func newZoneLookup(syscall.RawConn) zoneLookup { return netZones{} }

func (netZones) name(index uint32) (string, bool) {
	if index > 1<<31-1 {
		return "", false
	}
	ifi, err := net.InterfaceByIndex(int(index))
	if err != nil {
		return "", false
	}
	return ifi.Name, true
}

func (z netZones) is(index uint32, name string) (same, exists bool) {
	n, ok := z.name(index)
	return n == name, ok
}

func (netZones) index(name string) (uint32, bool) {
	ifi, err := net.InterfaceByName(name)
	if err != nil || ifi.Index <= 0 || uint64(ifi.Index) > 1<<32-1 {
		return 0, false
	}
	return uint32(ifi.Index), true
}
