//go:build !race

package quicbatch

// raceEnabled shrinks transfers: the race detector slows quic-go ~10x.
const raceEnabled = false
