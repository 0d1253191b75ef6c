package faultproxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"example.org/popspool/spooltest/testcert"
)

// sink counts what arrives on each connection and sends back what it is
// told to (reply bytes, then EOF) once the client half-closes.
func sink(t *testing.T, reply []byte) (addr string, got chan []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = make(chan []byte, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(c)
				got <- b
				c.Write(reply)
			}()
		}
	}()
	return ln.Addr().String(), got
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// roundTrip sends up, half-closes, and reads the reply to its end.
func roundTrip(t *testing.T, addr string, up []byte) ([]byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(up); err != nil {
		return nil, err
	}
	c.(*net.TCPConn).CloseWrite()
	return io.ReadAll(c)
}

func TestDrawIsSeededAndFollowsTheRates(t *testing.T) {
	p := Plan{Seed: 42, CutUp: 0.2, CutDown: 0.3, Stall: 0.1, MaxUp: 1000, MaxDown: 1 << 20,
		StallMin: 100 * time.Millisecond, StallMax: time.Second}
	var n [3]int
	small := 0
	for i := 1; i <= 2000; i++ {
		f := p.Draw(i)
		if f != p.Draw(i) {
			t.Fatalf("connection %d: two draws differ", i)
		}
		if f.Kind == FaultNone {
			continue
		}
		n[f.Kind]++
		if f.At < 1 || f.Dir == Up && f.At > 1000 || f.At > 1<<20 {
			t.Fatalf("connection %d: %+v out of bounds", i, f)
		}
		if f.Kind == FaultStall && (f.For < p.StallMin || f.For > p.StallMax) {
			t.Fatalf("connection %d: stall %v", i, f.For)
		}
		if f.Kind == FaultCut && f.At < 1000 {
			small++
		}
	}
	if n[FaultCut] < 900 || n[FaultCut] > 1100 || n[FaultStall] < 150 || n[FaultStall] > 250 {
		t.Fatalf("cuts %d stalls %d of 2000, want about 1000 and 200", n[FaultCut], n[FaultStall])
	}
	if small < 300 {
		t.Fatalf("only %d of %d cuts in the first 1000 bytes: not log-uniform", small, n[FaultCut])
	}
	if (Plan{Seed: 43, CutUp: 0.5}).Draw(1) == (Plan{Seed: 42, CutUp: 0.5}).Draw(1) && (Plan{Seed: 43, CutUp: 0.5}).Draw(2) == (Plan{Seed: 42, CutUp: 0.5}).Draw(2) {
		t.Fatal("the seed changes nothing")
	}
}

func TestRawPassesEverythingWithoutFaults(t *testing.T) {
	reply := pattern(300 << 10)
	addr, got := sink(t, reply)
	p := StartRaw(t, addr, Plan{Seed: 1})
	up := pattern(200 << 10)
	back, err := roundTrip(t, p.Addr, up)
	if err != nil || !bytes.Equal(back, reply) {
		t.Fatalf("reply: %d bytes %v, want %d", len(back), err, len(reply))
	}
	if b := <-got; !bytes.Equal(b, up) {
		t.Fatalf("server got %d bytes, want %d", len(b), len(up))
	}
	if st := p.Stats(); st.Conns != 1 || st.Cuts != [2]int{} || st.Stalls != 0 || st.Unfired != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRawCutsAfterNBytes: the server gets exactly the drawn N bytes of
// the client's, then the connection is gone both ways.
func TestRawCutsAfterNBytes(t *testing.T) {
	addr, got := sink(t, []byte("never"))
	plan := Plan{Seed: 7, CutUp: 1, MaxUp: 100 << 10}
	p := StartRaw(t, addr, plan)
	up := pattern(200 << 10)
	for i := 1; i <= 3; i++ {
		back, _ := roundTrip(t, p.Addr, up)
		want := plan.Draw(i).At
		if b := <-got; !bytes.Equal(b, up[:want]) {
			t.Fatalf("connection %d: server got %d bytes, want the first %d", i, len(b), want)
		}
		if len(back) != 0 {
			t.Fatalf("connection %d: the client got %q after the cut", i, back)
		}
	}
	if st := p.Stats(); st.Cuts != [2]int{3, 0} || st.Plain != 3 || st.Handshake != 0 || st.InRecord != 0 {
		t.Fatalf("stats %+v", st)
	}
	p.Disarm()
	reply, err := roundTrip(t, p.Addr, up)
	if b := <-got; !bytes.Equal(b, up) || string(reply) != "never" || err != nil {
		t.Fatalf("after Disarm: server got %d of %d bytes, client %q %v", len(b), len(up), reply, err)
	}
}

func TestRawStallsThenGoesOn(t *testing.T) {
	reply := pattern(50 << 10)
	addr, got := sink(t, reply)
	plan := Plan{Seed: 3, Stall: 1, MaxUp: 10 << 10, MaxDown: 10 << 10, StallMin: 400 * time.Millisecond, StallMax: 400 * time.Millisecond}
	p := StartRaw(t, addr, plan)
	up := pattern(20 << 10)
	start := time.Now()
	back, err := roundTrip(t, p.Addr, up)
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("took %v: no stall", took)
	}
	if b := <-got; err != nil || !bytes.Equal(b, up) || !bytes.Equal(back, reply) {
		t.Fatalf("after the stall: server %d of %d bytes, client %d of %d, %v", len(b), len(up), len(back), len(reply), err)
	}
	if st := p.Stats(); st.Stalls != 1 || st.Cuts != [2]int{} {
		t.Fatalf("stats %+v", st)
	}
}

// TestRawCutsInsideTLS: cuts in the first bytes of either direction land
// in the handshake, inside a record, and the client's handshake fails
// (verified TLS, the test certificate); cuts far into the transfer land
// inside application-data records after it.
func TestRawCutsInsideTLS(t *testing.T) {
	cert, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cert.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.Copy(c, c) // echo until the client closes
			}()
		}
	}()
	client := &tls.Config{RootCAs: cert.Pool(), ServerName: "127.0.0.1"}
	dial := func(addr string) error {
		c, err := tls.Dial("tcp", addr, client)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := pattern(256 << 10)
		go c.Write(msg)
		back := make([]byte, len(msg))
		if _, err := io.ReadFull(c, back); err != nil {
			return err
		}
		if !bytes.Equal(back, msg) {
			return errors.New("echo differs")
		}
		return nil
	}
	early := StartRaw(t, ln.Addr().String(), Plan{Seed: 5, CutUp: 0.5, CutDown: 0.5, MaxUp: 40, MaxDown: 40})
	for i := 0; i < 6; i++ {
		if err := dial(early.Addr); err == nil {
			t.Fatalf("connection %d: a handshake cut at byte ≤ 40 succeeded", i+1)
		}
	}
	if st := early.Stats(); st.Cuts[Up]+st.Cuts[Down] != 6 || st.Handshake != 6 || st.InRecord != 6 || st.Plain != 0 {
		t.Fatalf("early cuts: %+v", st)
	}
	if !waitFor(func() bool { return early.InHandshake() == 0 }) {
		t.Fatalf("%d connections in the handshake after all ended", early.InHandshake())
	}
	stall := StartRaw(t, ln.Addr().String(), Plan{Stall: 1, MaxUp: 40, MaxDown: 40, StallMin: time.Second, StallMax: time.Second})
	go dial(stall.Addr)
	if !waitFor(func() bool { return stall.InHandshake() == 1 }) {
		t.Fatal("a connection stalled at byte ≤ 40 is not seen in its handshake")
	}
	if !waitFor(func() bool { return stall.InHandshake() == 0 && stall.Stats().Stalls == 1 }) {
		t.Fatal("still in the handshake after the stall")
	}
	hold := StartRaw(t, ln.Addr().String(), Plan{})
	hold.Hold(time.Second)
	start := time.Now()
	go dial(hold.Addr)
	if !waitFor(func() bool { return hold.Holding() == 1 && hold.InHandshake() == 1 }) {
		t.Fatal("the held handshake is not seen")
	}
	if !waitFor(func() bool { return hold.Holding() == 0 && hold.InHandshake() == 0 }) || time.Since(start) < time.Second {
		t.Fatalf("the hold ended after %v", time.Since(start))
	}
	if err := dial(hold.Addr); err != nil || hold.Stats().Holds != 1 {
		t.Fatalf("after the hold: %v, %+v", err, hold.Stats())
	}
	// A client that goes away inside a held handshake (a kill) is no
	// longer in it, and the hold ends.
	hold.Hold(5 * time.Second)
	raw, err := net.Dial("tcp", hold.Addr)
	if err != nil {
		t.Fatal(err)
	}
	go tls.Client(raw, client).Handshake()
	if !waitFor(func() bool { return hold.Holding() == 1 && hold.InHandshake() == 1 }) {
		t.Fatal("the second held handshake is not seen")
	}
	raw.Close()
	if !waitFor(func() bool { return hold.Holding() == 0 && hold.InHandshake() == 0 }) {
		t.Fatalf("a closed client still counts: holding %d, in handshake %d", hold.Holding(), hold.InHandshake())
	}
	late := Plan{Seed: 11, CutUp: 0.5, CutDown: 0.5, MaxUp: 200 << 10, MaxDown: 200 << 10}
	for late.Draw(1).At < 50<<10 { // a seed whose cut comes deep in the transfer
		late.Seed++
	}
	p := StartRaw(t, ln.Addr().String(), late)
	if err := dial(p.Addr); err == nil {
		t.Fatal("a cut connection echoed everything")
	}
	if st := p.Stats(); st.Cuts[late.Draw(1).Dir] != 1 || st.Handshake != 0 || st.Plain != 0 {
		t.Fatalf("late cut (%+v): %+v", late.Draw(1), st)
	}
	clean := StartRaw(t, ln.Addr().String(), Plan{})
	if err := dial(clean.Addr); err != nil {
		t.Fatalf("without faults: %v", err)
	}
}

func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
