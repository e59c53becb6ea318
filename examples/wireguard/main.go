// Command wireguard runs two WireGuard peers in one process, each a
// wireguard-go device on a wgbatch Bind, with userspace TUNs (wireguard-go's
// tun/netstack) so it needs neither root nor a kernel TUN, and sends a line
// of TCP through the tunnel between them over loopback UDP.
//
//	cd examples/wireguard && go run .
//
// The line that makes a device batch its UDP is the Bind given to
// device.NewDevice: wgbatch.NewBind() where wireguard-go's own code has
// conn.NewDefaultBind().
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"net/netip"
	"strings"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	wgbatch "github.com/batchconn/batchconn/integration/wireguard"
)

// peer is one end of the tunnel: its device, its userspace network stack,
// its tunnel address and its keys.
type peer struct {
	dev       *device.Device
	net       *netstack.Net
	addr      netip.Addr
	priv, pub []byte
}

func newPeer(addr netip.Addr) (*peer, error) {
	tunDev, tnet, err := netstack.CreateNetTUN([]netip.Addr{addr}, nil, 1420)
	if err != nil {
		return nil, err
	}
	logger := device.NewLogger(device.LogLevelError, "wireguard "+addr.String()+": ")
	dev := device.NewDevice(tunDev, wgbatch.NewBind(), logger) // was conn.NewDefaultBind()
	priv := make([]byte, curve25519.ScalarSize)
	if _, err := rand.Read(priv); err != nil {
		return nil, err
	}
	pub, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	return &peer{dev: dev, net: tnet, addr: addr, priv: priv, pub: pub}, nil
}

// listenPort returns the UDP port the device's Bind opened.
func (p *peer) listenPort() (string, error) {
	conf, err := p.dev.IpcGet()
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(conf, "\n") {
		if port, ok := strings.CutPrefix(line, "listen_port="); ok {
			return port, nil
		}
	}
	return "", fmt.Errorf("no listen_port in the device's configuration")
}

// connect makes p send to other at other's loopback UDP port.
func (p *peer) connect(other *peer) error {
	port, err := other.listenPort()
	if err != nil {
		return err
	}
	return p.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%s\nallowed_ip=%s/32\n",
		hex.EncodeToString(other.pub), port, other.addr))
}

func main() {
	a, err := newPeer(netip.MustParseAddr("10.9.0.1"))
	if err != nil {
		log.Fatal(err)
	}
	defer a.dev.Close()
	b, err := newPeer(netip.MustParseAddr("10.9.0.2"))
	if err != nil {
		log.Fatal(err)
	}
	defer b.dev.Close()
	for _, p := range []*peer{a, b} {
		// listen_port=0: the Bind picks a port, shared by udp4 and udp6.
		if err := p.dev.IpcSet("private_key=" + hex.EncodeToString(p.priv) + "\nlisten_port=0\n"); err != nil {
			log.Fatal(err)
		}
		if err := p.dev.Up(); err != nil {
			log.Fatal(err)
		}
	}
	if err := a.connect(b); err != nil {
		log.Fatal(err)
	}
	if err := b.connect(a); err != nil {
		log.Fatal(err)
	}

	// B answers each line with it in upper case, through the tunnel.
	ln, err := b.net.ListenTCPAddrPort(netip.AddrPortFrom(b.addr, 7))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			fmt.Fprint(c, strings.ToUpper(line))
		}
	}()

	c, err := a.net.DialTCPAddrPort(netip.AddrPortFrom(b.addr, 7))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hello through wireguard-go on batchconn")
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(reply)
}
