package batchconn

// GSOSegments is the most segments the Conns of this process put in one
// GSO send (the probed limit on Linux).
var GSOSegments = gsoSegments
