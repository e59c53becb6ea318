//go:build race

package batchconn_test

const raceEnabled = true
