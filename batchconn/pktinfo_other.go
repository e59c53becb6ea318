//go:build !linux

package batchconn

import "net/netip"

// PacketInfoSpace is 0 off Linux: see the Linux documentation. It is an int
// there too, so that code using it compiles alike on every platform.
const PacketInfoSpace int = 0

// AppendPacketInfo returns b as it is off Linux: see the Linux documentation.
func AppendPacketInfo(b []byte, src netip.Addr, ifindex uint32) []byte { return b }

// ParsePacketInfo finds nothing off Linux: see the Linux documentation.
func ParsePacketInfo(oob []byte) (local netip.Addr, ifindex uint32, ok bool) {
	return netip.Addr{}, 0, false
}
