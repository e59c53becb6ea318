module github.com/batchconn/batchconn

go 1.26.0

require (
	github.com/quic-go/quic-go v0.66.0
	golang.org/x/net v0.63.0
	golang.org/x/sys v0.50.0
)

require golang.org/x/crypto v0.59.0 // indirect
