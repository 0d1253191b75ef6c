package worker

import (
	"bufio"
	"io"
	"sync"
)

// The readers that parse a file's envelope lines and header are reused
// from one file to the next: a new 16 KiB one and a 4 KiB one for each
// message were three quarters of what rewrited allocated (and the
// garbage collector then swept), docs/benchmarks.md "CPU per message".
// A plan given up on (planWithin) may still hold its pair; the pool
// simply makes new ones meanwhile.
var (
	heads = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, headBuffer) }}
	lines = sync.Pool{New: func() any { return bufio.NewReader(nil) }}
)

// pooled returns a reader of pool reading r.
func pooled(pool *sync.Pool, r io.Reader) *bufio.Reader {
	br := pool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// release puts br back into pool, reading nothing (so the pool keeps no
// file alive). br must not be used after.
func release(pool *sync.Pool, br *bufio.Reader) {
	br.Reset(nil)
	pool.Put(br)
}
