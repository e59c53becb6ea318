package main

import (
	"fmt"

	"golang.zx2c4.com/wireguard/conn"

	wgbatch "github.com/batchconn/batchconn/integration/wireguard"
)

// newBind returns the Bind a wireguard-go process runs on: "std" is
// wireguard-go's own, "batch" wgbatch's with the given options.
func newBind(name string, gro, gso bool) (conn.Bind, error) {
	switch name {
	case "std":
		return conn.NewStdNetBind(), nil
	case "batch":
		return wgbatch.NewBind(wgbatch.WithGRO(gro), wgbatch.WithGSO(gso)), nil
	}
	return nil, fmt.Errorf("unknown bind %q", name)
}
