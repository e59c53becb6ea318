package batchconn

import "context"

// HoldGate takes the write gate, as a send in flight holds it, so that
// single-datagram writers queue behind it; ReleaseGate releases it, handing
// it to the first of them.
func (c *Conn) HoldGate()    { c.wg.lock(context.Background(), nil) }
func (c *Conn) ReleaseGate() { c.unlock() }

// QueuedWriters is how many single-datagram writers wait for the gate.
func (c *Conn) QueuedWriters() int { return int(c.grp.n.Load()) }
