package bench

import (
	"io"
	"strconv"
	"sync/atomic"
	"time"
)

// progress keeps one live line on a terminal: round, mode, time spent. Its
// ticks allocate nothing, so it does not disturb allocation counts.
type progress struct {
	w      io.Writer
	name   string
	start  time.Time
	rounds int
	round  atomic.Int64
	label  atomic.Pointer[string]
	quit   chan struct{}
	done   chan struct{}
	line   []byte
}

// startProgress starts the line if w is a terminal; otherwise it returns
// nil, and the nil *progress does nothing.
func startProgress(w io.Writer, name string, rounds int) *progress {
	if w == nil || !isTerminal(w) {
		return nil
	}
	p := &progress{w: w, name: name, start: time.Now(), rounds: rounds,
		quit: make(chan struct{}), done: make(chan struct{}), line: make([]byte, 0, 128)}
	go p.loop()
	return p
}

// set says what runs now; label must not change afterwards.
func (p *progress) set(label *string, round int) {
	if p == nil {
		return
	}
	p.label.Store(label)
	p.round.Store(int64(round))
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			p.w.Write([]byte("\r\033[K"))
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *progress) draw() {
	label := p.label.Load()
	if label == nil {
		return
	}
	b := append(p.line[:0], "\r\033[K"...)
	b = append(b, p.name...)
	b = append(b, ": "...)
	if r := p.round.Load(); r == 0 {
		b = append(b, "warm-up"...)
	} else {
		b = append(b, "round "...)
		b = strconv.AppendInt(b, r, 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(p.rounds), 10)
	}
	b = append(b, "  "...)
	b = append(b, *label...)
	b = append(b, "  "...)
	b = strconv.AppendFloat(b, time.Since(p.start).Seconds(), 'f', 1, 64)
	b = append(b, "s elapsed"...)
	p.line = b
	p.w.Write(b)
}

func (p *progress) stop() {
	if p == nil {
		return
	}
	close(p.quit)
	<-p.done
}
