// Package wgbatch is a wireguard-go conn.Bind built on batchconn.
package wgbatch
