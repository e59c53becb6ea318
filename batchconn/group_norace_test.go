//go:build !race

package batchconn_test

const raceEnabled = false
