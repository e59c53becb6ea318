package bench

import (
	"bytes"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	if p := startProgress(&bytes.Buffer{}, "x", 3); p != nil {
		t.Fatal("a progress line on a buffer, which is no terminal")
	}
	var b bytes.Buffer
	p := &progress{w: &b, name: "batchbench", start: time.Now(), rounds: 15, line: make([]byte, 0, 128)}
	p.draw()
	if b.Len() != 0 {
		t.Errorf("drew %q before anything ran", b.String())
	}
	label := "batchconn-gso, 8 conns"
	p.set(&label, 3)
	p.draw()
	if got, want := b.String(), "\r\033[Kbatchbench: round 3/15  batchconn-gso, 8 conns  0.0s elapsed"; got != want {
		t.Errorf("drew %q, want %q", got, want)
	}
	p.set(&label, 0)
	b.Reset()
	if n := testing.AllocsPerRun(100, func() { b.Reset(); p.draw() }); n != 0 {
		t.Errorf("a tick allocates %v times; it must not disturb the modes' allocation counts", n)
	}
	if !bytes.Contains(b.Bytes(), []byte("batchbench: warm-up  batchconn-gso")) {
		t.Errorf("warm-up line %q", b.String())
	}
}
