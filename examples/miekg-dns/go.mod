module github.com/batchconn/batchconn/examples/miekg-dns

go 1.26.0

require (
	github.com/batchconn/batchconn v0.0.0
	github.com/miekg/dns v1.1.73
)

require (
	golang.org/x/net v0.63.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/batchconn/batchconn => ../..
