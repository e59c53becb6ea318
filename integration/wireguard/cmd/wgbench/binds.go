package main

import (
	"errors"
	"fmt"

	"golang.zx2c4.com/wireguard/conn"
)

// newBind returns the Bind a wireguard-go process runs on: "std" is
// wireguard-go's own, "batch" wgbatch's with the given options.
func newBind(name string, gro, gso bool) (conn.Bind, error) {
	switch name {
	case "std":
		return conn.NewStdNetBind(), nil
	case "batch":
		return nil, errors.New("the batch Bind is not merged into this branch yet")
	}
	return nil, fmt.Errorf("unknown bind %q", name)
}
