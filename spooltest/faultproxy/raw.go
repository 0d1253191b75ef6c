package faultproxy

import (
	"errors"
	"io"
	"math"
	"math/rand"
	"net"
	"sync"
	"testing"
	"time"
)

// A raw proxy (StartRaw) faults connections at the TCP level and reads
// nothing of their protocol, so it works in front of a TLS port as well
// as a plain one: it cuts a connection after N bytes of one direction, or
// stops forwarding one direction for a while after N bytes (a stall). N
// is drawn over several orders of magnitude, so the cuts land inside the
// TLS handshake as well as inside the records of a transfer. It looks at
// the TLS record headers (type and length, never the contents) only to
// say where a cut landed: RawStats.

// FaultKind is what a raw proxy does to one connection.
type FaultKind int

// The kinds.
const (
	FaultNone  FaultKind = iota // forward everything
	FaultCut                    // close both ends after At bytes of Dir
	FaultStall                  // stop forwarding Dir for For after At bytes of it
)

// Fault is the fault a Plan draws for one connection.
type Fault struct {
	Kind FaultKind
	Dir  Dir
	At   int64         // bytes of Dir forwarded before the fault, at least 1
	For  time.Duration // FaultStall: how long
}

// Plan is what a raw proxy does to the connections it accepts. Each draws
// one fault (or none) from an RNG seeded with Seed and the connection's
// number, so connection n gets the same fault in every run with the same
// seed, whatever the timing.
type Plan struct {
	Seed int64
	// CutUp, CutDown and Stall are the probabilities that a connection
	// is cut after N bytes client to server, cut after N bytes server to
	// client, or has one direction stalled after N bytes. Their sum is
	// at most 1; the rest pass untouched.
	CutUp, CutDown, Stall float64
	// MaxUp and MaxDown bound N in each direction: N is drawn log-uniform
	// from 1 to Max, so that the first few hundred bytes (the handshake)
	// are as likely as any other order of magnitude. 0 means 1 MB.
	MaxUp, MaxDown int64
	// StallMin and StallMax bound a stall's length.
	StallMin, StallMax time.Duration
	// UpRate and DownRate slow each direction to that many bytes per
	// second; 0 forwards at loopback speed.
	UpRate, DownRate int
}

// Draw returns the fault of connection n (numbered from 1).
func (p Plan) Draw(n int) Fault {
	rng := rand.New(rand.NewSource(p.Seed*1_000_003 + int64(n)))
	u := rng.Float64()
	f := Fault{}
	switch {
	case u < p.CutUp:
		f = Fault{Kind: FaultCut, Dir: Up}
	case u < p.CutUp+p.CutDown:
		f = Fault{Kind: FaultCut, Dir: Down}
	case u < p.CutUp+p.CutDown+p.Stall:
		f = Fault{Kind: FaultStall, Dir: Dir(rng.Intn(2))}
		f.For = p.StallMin
		if p.StallMax > p.StallMin {
			f.For += time.Duration(rng.Int63n(int64(p.StallMax - p.StallMin)))
		}
	default:
		return f
	}
	max := p.MaxUp
	if f.Dir == Down {
		max = p.MaxDown
	}
	if max <= 0 {
		max = 1 << 20
	}
	f.At = min(max, 1+int64(math.Exp(rng.Float64()*math.Log(float64(max)))))
	return f
}

// RawStats counts what a raw proxy did.
type RawStats struct {
	Conns  int
	Cuts   [2]int // cuts that fired, by Dir
	Stalls int    // stalls that fired
	// Unfired counts faults drawn for connections that ended before
	// their byte count was reached.
	Unfired int
	// Where the cuts landed. Plain: before any TLS record (the clear-text
	// part of STARTTLS or STLS, or a port without TLS). Handshake: after
	// the first TLS record and before the client's first complete
	// application-data record (with TLS 1.3 that record is its Finished
	// message, so this is the handshake). InRecord: inside a TLS record
	// of the cut direction, not at a boundary between two.
	Plain, Handshake, InRecord int
	// Holds counts the handshakes Hold held.
	Holds int
}

// Raw is a running raw proxy.
type Raw struct {
	Addr string // "127.0.0.1:port" to connect to instead of the target

	target string
	ln     net.Listener
	wg     sync.WaitGroup
	done   chan struct{} // closed by Close: stalls end

	mu    sync.Mutex
	plan  Plan
	armed bool
	stats RawStats
	live  map[*rawConn]bool
	hold  time.Duration // Hold: the next handshake waits this long
	held  int           // connections being held now
}

// StartRaw listens on a free loopback port and forwards every connection
// to target, faulting them as plan says. It is closed when tb ends.
func StartRaw(tb testing.TB, target string, plan Plan) *Raw {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faultproxy: %v", err)
	}
	r := &Raw{Addr: ln.Addr().String(), target: target, ln: ln, done: make(chan struct{}), plan: plan, armed: true, live: map[*rawConn]bool{}}
	r.wg.Add(1)
	go r.accept()
	tb.Cleanup(r.Close)
	return r
}

// Disarm stops drawing faults: connections accepted from now on pass
// untouched (at the plan's rates). Faults already drawn stay.
func (r *Raw) Disarm() {
	r.mu.Lock()
	r.armed = false
	r.mu.Unlock()
}

// Hold makes the next connection that starts TLS wait d before the
// server's first TLS bytes (its ServerHello) reach the client, which is
// then inside its handshake for d: where a test can kill it. One
// connection per call; Unhold takes back a hold not used yet.
func (r *Raw) Hold(d time.Duration) {
	r.mu.Lock()
	r.hold = d
	r.mu.Unlock()
}

// Unhold takes back a Hold no connection used yet.
func (r *Raw) Unhold() { r.Hold(0) }

// Holding returns how many connections Hold is holding now.
func (r *Raw) Holding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// Stats returns the counts so far.
func (r *Raw) Stats() RawStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close stops listening, ends the stalls and waits for the connections in
// progress to end.
func (r *Raw) Close() {
	r.mu.Lock()
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.mu.Unlock()
	_ = r.ln.Close() // Accept returns; nothing else to report
	r.wg.Wait()
}

func (r *Raw) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return // closed
		}
		r.mu.Lock()
		r.stats.Conns++
		n, plan, armed := r.stats.Conns, r.plan, r.armed
		r.mu.Unlock()
		f := Fault{}
		if armed {
			f = plan.Draw(n)
		}
		r.wg.Add(1)
		go r.serve(c, f, plan)
	}
}

// rawConn is one proxied connection.
type rawConn struct {
	r              *Raw
	client, server net.Conn
	once           sync.Once

	upDone chan struct{} // closed when the client's side ended

	mu      sync.Mutex
	fault   Fault // Kind becomes FaultNone once it fired
	records [2]records
	gone    bool // the client's side ended: no handshake any more
}

func (r *Raw) serve(c net.Conn, f Fault, plan Plan) {
	defer r.wg.Done()
	s, err := net.Dial("tcp", r.target)
	if err != nil {
		_ = c.Close() // the client sees the refusal as a closed connection
		return
	}
	rc := &rawConn{r: r, client: c, server: s, fault: f, upDone: make(chan struct{})}
	r.mu.Lock()
	r.live[rc] = true
	r.mu.Unlock()
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() {
		defer pumps.Done()
		rc.pump(Up, c, s, plan.UpRate)
		rc.mu.Lock()
		rc.gone = true
		rc.mu.Unlock()
		close(rc.upDone)
	}()
	go func() { defer pumps.Done(); rc.pump(Down, s, c, plan.DownRate) }()
	pumps.Wait()
	rc.close()
	rc.mu.Lock()
	unfired := rc.fault.Kind != FaultNone
	rc.mu.Unlock()
	r.mu.Lock()
	delete(r.live, rc)
	if unfired {
		r.stats.Unfired++
	}
	r.mu.Unlock()
}

// InHandshake returns how many of the open connections are inside a TLS
// handshake: TLS began and the client's first application-data record
// has not passed yet (RawStats.Handshake).
func (r *Raw) InHandshake() int {
	r.mu.Lock()
	conns := make([]*rawConn, 0, len(r.live))
	for rc := range r.live {
		conns = append(conns, rc)
	}
	r.mu.Unlock()
	n := 0
	for _, rc := range conns {
		rc.mu.Lock()
		if rc.handshaking() {
			n++
		}
		rc.mu.Unlock()
	}
	return n
}

// handshaking reports whether the connection is inside its TLS
// handshake. Called with rc.mu held.
func (rc *rawConn) handshaking() bool {
	return !rc.gone && (rc.records[Up].on || rc.records[Down].on) && rc.records[Up].app == 0
}

func (rc *rawConn) close() {
	rc.once.Do(func() {
		_ = rc.client.Close() // both closes only end the pumps
		_ = rc.server.Close()
	})
}

// pump forwards src to dst, firing the connection's fault when it is due
// in this direction. At the end of src it half-closes dst, as a direct
// connection would.
func (rc *rawConn) pump(dir Dir, src, dst net.Conn, rate int) {
	buf := make([]byte, 32<<10)
	var passed, owed int64
	for {
		n, err := src.Read(buf)
		b := buf[:n]
		first := true
		if dir == Down && n > 0 {
			rc.holdHandshake(b)
		}
		for len(b) > 0 {
			chunk := rc.upTo(dir, b, passed)
			if _, werr := dst.Write(chunk); werr != nil {
				rc.close()
				return
			}
			rc.see(dir, chunk, first)
			first = false
			passed += int64(len(chunk))
			b = b[len(chunk):]
			owed = rc.pace(owed+int64(len(chunk)), rate)
			if !rc.fire(dir, passed) {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite() // the peer may already be gone
				return
			}
			rc.close()
			return
		}
	}
}

// holdHandshake waits as Hold said if read b is the server's first TLS
// bytes.
func (rc *rawConn) holdHandshake(b []byte) {
	rc.mu.Lock()
	start := !rc.records[Down].on && startsTLS(b)
	rc.mu.Unlock()
	if !start {
		return
	}
	r := rc.r
	r.mu.Lock()
	d := r.hold
	r.hold = 0
	if d > 0 {
		r.stats.Holds++
		r.held++
	}
	r.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select { // a killed client ends the hold
		case <-t.C:
		case <-rc.upDone:
		case <-r.done:
		}
		t.Stop()
		r.mu.Lock()
		r.held--
		r.mu.Unlock()
	}
}

// startsTLS reports whether b begins with a handshake record's header.
func startsTLS(b []byte) bool { return len(b) >= 2 && b[0] == 22 && b[1] == 3 }

// upTo returns the part of b to forward before the fault is due.
func (rc *rawConn) upTo(dir Dir, b []byte, passed int64) []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	f := rc.fault
	if f.Kind == FaultNone || f.Dir != dir || passed+int64(len(b)) < f.At {
		return b
	}
	return b[:max(f.At-passed, 0)]
}

// see follows the TLS records of dir; first says b starts a read.
func (rc *rawConn) see(dir Dir, b []byte, first bool) {
	rc.mu.Lock()
	rc.records[dir].feed(b, first)
	rc.mu.Unlock()
}

// pace sleeps for the bytes owed at rate once they make a millisecond,
// and returns what is still owed.
func (rc *rawConn) pace(owed int64, rate int) int64 {
	if rate <= 0 || owed < int64(rate/1000) {
		return owed
	}
	rc.wait(time.Duration(owed) * time.Second / time.Duration(rate))
	return 0
}

func (rc *rawConn) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-rc.r.done:
	}
}

// fire fires the fault if it is due in dir after passed bytes; false
// means the connection was cut.
func (rc *rawConn) fire(dir Dir, passed int64) bool {
	rc.mu.Lock()
	f := rc.fault
	if f.Kind == FaultNone || f.Dir != dir || passed < f.At {
		rc.mu.Unlock()
		return true
	}
	rc.fault.Kind = FaultNone
	here := rc.records[dir]
	plain, handshake := !rc.records[Up].on && !rc.records[Down].on, rc.handshaking()
	rc.mu.Unlock()
	st := &rc.r.stats
	rc.r.mu.Lock()
	if f.Kind == FaultStall {
		st.Stalls++
		rc.r.mu.Unlock()
		rc.wait(f.For)
		return true
	}
	st.Cuts[dir]++
	switch {
	case plain:
		st.Plain++
	case handshake:
		st.Handshake++
	}
	if here.on && !here.boundary() {
		st.InRecord++
	}
	rc.r.mu.Unlock()
	rc.close()
	return false
}

// records follows the TLS record layer of one direction (RFC 8446 §5.1):
// a 5-byte header (type, version, length) and the body. It begins at the
// first read that starts with a handshake record's header, which is how
// TLS begins on an implicit-TLS port and after STARTTLS or STLS (the
// client sends its ClientHello only after the server's go-ahead, and the
// server its ServerHello only after that).
type records struct {
	on   bool
	hdr  [5]byte
	nh   int // header bytes of the current record seen
	left int // body bytes of the current record still to come
	app  int // complete application-data records (type 23)
}

func (r *records) feed(b []byte, first bool) {
	if !r.on {
		if !first || !startsTLS(b) {
			return
		}
		r.on = true
	}
	for len(b) > 0 {
		if r.nh < 5 {
			k := copy(r.hdr[r.nh:], b)
			r.nh += k
			b = b[k:]
			if r.nh == 5 {
				r.left = int(r.hdr[3])<<8 | int(r.hdr[4])
				r.endRecord()
			}
			continue
		}
		k := min(r.left, len(b))
		r.left -= k
		b = b[k:]
		r.endRecord()
	}
}

// endRecord ends the current record if its body is complete.
func (r *records) endRecord() {
	if r.nh == 5 && r.left == 0 {
		if r.hdr[0] == 23 {
			r.app++
		}
		r.nh = 0
	}
}

// boundary reports whether the bytes so far end at a record boundary.
func (r *records) boundary() bool { return r.nh == 0 }
