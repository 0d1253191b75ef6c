package chaos

import (
	"bytes"
	"sync"
	"time"

	"example.org/popspool/spooltest/faultproxy"
)

// Kind is a network fault the fault proxies inject.
type Kind int

// The faults. Each is armed once and fires at the next chance it gets.
const (
	// POP3MidRetr cuts the link in the middle of a RETR reply: the
	// client has part of the message, the server keeps all of it.
	POP3MidRetr Kind = iota
	// POP3BeforeQuit cuts the link after the client sent DELE and before
	// QUIT reaches the server: the server forgets the deletions (RFC 1939
	// §6), the client must not download those messages again.
	POP3BeforeQuit
	// POP3QuitReply lets QUIT through, so the server removes the messages,
	// and cuts before its +OK reaches the client.
	POP3QuitReply
	// SMTPMidData cuts the link in the middle of DATA: the server never
	// sees the final dot and accepts nothing.
	SMTPMidData
	// SMTPAfterDot lets the final dot through and cuts before the reply
	// reaches the client: the server accepted the message and the client
	// cannot know (RFC 1047). The one allowed duplicate.
	SMTPAfterDot
	// NumKinds is the number of kinds.
	NumKinds
)

// The RCPT refusal (ArmRcpt) is no Kind: it cuts nothing, and TestChaos
// has its SMTP sink refuse instead (smtpsink.SetRcptFault); the proxy
// gives it only in front of a real server, which will not refuse on
// demand.

// Rcpt4xx is the proxy's answer to an RCPT when ArmRcpt armed it, the same
// as the sink's.
const Rcpt4xx = "451 4.3.0 chaos: try again later\r\n"

var kindNames = [NumKinds]string{"pop3-mid-retr", "pop3-before-quit", "pop3-quit-reply", "smtp-mid-data", "smtp-after-dot"}

func (k Kind) String() string { return kindNames[k] }

// Faults arms and counts the faults of a POP3 and an SMTP fault proxy. It
// follows each proxied connection's protocol state from the lines it
// sees, so a fault fires exactly where its name says. Safe for concurrent
// use (the proxies call the rules from many goroutines).
type Faults struct {
	mu    sync.Mutex
	armed [NumKinds]int // 0: not armed; else 1 + lines to let through first
	fired [NumKinds]int
	rcpt  int // RCPT refusals armed (0 or 1)
	rcpts int // and given
	pop   map[int]*pop3State
	smtp  map[int]*smtpState
	// Rates of the slow links, bytes per second (0: as fast as loopback):
	// POP3 server to client, SMTP client to server. Set before use.
	POP3Rate, SMTPRate int
}

// pacer slows one direction of a connection down to a rate.
type pacer struct {
	owed int // bytes passed and not yet paid for with a pause
}

// pause returns how long to wait after n more bytes at rate bytes/s;
// pauses shorter than a millisecond are saved up.
func (p *pacer) pause(n, rate int) time.Duration {
	if rate <= 0 {
		return 0
	}
	p.owed += n
	if p.owed < rate/1000 {
		return 0
	}
	d := time.Duration(p.owed) * time.Second / time.Duration(rate)
	p.owed = 0
	return d
}

// NewFaults returns Faults with nothing armed.
func NewFaults() *Faults {
	return &Faults{pop: map[int]*pop3State{}, smtp: map[int]*smtpState{}}
}

// Arm arms fault k; for the mid-transfer kinds, skip data lines pass
// before the cut (fewer if the transfer ends first: then the cut comes
// at its end). It returns false if k was already armed.
func (f *Faults) Arm(k Kind, skip int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.armed[k] != 0 {
		return false
	}
	f.armed[k] = 1 + max(skip, 0)
	return true
}

// ArmRcpt makes the SMTP rule answer the next RCPT itself with Rcpt4xx,
// in the server's place: the server never sees that RCPT, and the client
// sees a temporary refusal. It returns false if already armed.
func (f *Faults) ArmRcpt() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rcpt > 0 {
		return false
	}
	f.rcpt = 1
	return true
}

// DisarmRcpt disarms the RCPT refusal and returns how many RCPTs the SMTP
// rule refused in all.
func (f *Faults) DisarmRcpt() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rcpt = 0
	return f.rcpts
}

// Disarm disarms every fault.
func (f *Faults) Disarm() {
	f.mu.Lock()
	f.armed = [NumKinds]int{}
	f.rcpt = 0
	f.mu.Unlock()
}

// Fired returns how often each fault fired.
func (f *Faults) Fired() [NumKinds]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

// fire reports whether armed fault k fires now, given the data lines
// passed so far (for the kinds that count them), and records it. Called
// with mu held.
func (f *Faults) fire(k Kind, lines int, end bool) bool {
	a := f.armed[k]
	if a == 0 || (!end && lines < a-1) {
		return false
	}
	f.armed[k] = 0
	f.fired[k]++
	return true
}

// pop3State follows one POP3 connection: the commands sent and not yet
// answered (the client pipelines DELE), and whether a multi-line reply is
// being passed.
type pop3State struct {
	greeted bool
	pending []string // commands awaiting their status line, e.g. "RETR", "UIDL*" (with argument)
	multi   string   // the command whose multi-line reply is passing, "" if none
	lines   int      // data lines of that reply passed so far
	dele    bool     // a DELE was sent in this session
	pace    pacer
}

// multiLine reports whether the +OK reply to cmd has a body (RFC 1939
// §5, §7; RFC 2449 §5).
func multiLine(cmd string) bool {
	switch cmd {
	case "RETR", "TOP", "CAPA", "UIDL", "LIST":
		return true
	}
	return false // USER, PASS, STAT, DELE, NOOP, RSET, QUIT, and UIDL/LIST with an argument ("UIDL*")
}

// POP3Rule is the faultproxy rule for the proxy in front of the POP3
// server.
func (f *Faults) POP3Rule() faultproxy.Rule {
	return func(conn int, dir faultproxy.Dir, line []byte) bool {
		f.mu.Lock()
		s := f.pop[conn]
		if s == nil {
			s = &pop3State{}
			f.pop[conn] = s
		}
		cut := s.see(f, dir, line)
		var wait time.Duration
		if cut {
			delete(f.pop, conn)
		} else if dir == faultproxy.Down {
			wait = s.pace.pause(len(line), f.POP3Rate)
		}
		f.mu.Unlock()
		time.Sleep(wait)
		return cut
	}
}

func (s *pop3State) see(f *Faults, dir faultproxy.Dir, line []byte) bool {
	if dir == faultproxy.Up {
		cmd, hasArg := verb(line)
		if hasArg && (cmd == "UIDL" || cmd == "LIST") {
			cmd += "*"
		}
		switch cmd {
		case "DELE":
			s.dele = true
		case "QUIT":
			if s.dele && f.fire(POP3BeforeQuit, 0, true) {
				return true
			}
		}
		s.pending = append(s.pending, cmd)
		return false
	}
	if s.multi != "" {
		end := string(line) == ".\r\n"
		if s.multi == "RETR" && f.fire(POP3MidRetr, s.lines, end) {
			return true
		}
		if end {
			s.multi = ""
		} else if bytes.HasSuffix(line, []byte("\n")) {
			s.lines++
		}
		return false
	}
	if !s.greeted || len(s.pending) == 0 {
		s.greeted = true
		return false
	}
	cmd := s.pending[0]
	s.pending = s.pending[1:]
	if cmd == "QUIT" && s.dele && f.fire(POP3QuitReply, 0, true) {
		return true
	}
	if bytes.HasPrefix(line, []byte("+OK")) && multiLine(cmd) {
		s.multi, s.lines = cmd, 0
	}
	return false
}

// verb returns a command line's keyword in upper case and whether an
// argument follows.
func verb(line []byte) (string, bool) {
	line = bytes.TrimRight(line, "\r\n")
	k, _, hasArg := bytes.Cut(line, []byte(" "))
	return string(bytes.ToUpper(k)), hasArg
}

// smtpState follows one SMTP connection through DATA, and counts the
// commands awaiting their reply, so that an answer in the server's place
// never overtakes the reply to a pipelined command.
type smtpState struct {
	phase   int  // smtpCommand, smtpAwait354, smtpData, smtpAfterDot
	lines   int  // data lines passed
	greeted bool // the server's greeting passed
	pending int  // commands (and the final dot) sent and not yet answered
	pace    pacer
}

const (
	smtpCommand = iota
	smtpAwait354
	smtpData
	smtpAfterDot
)

// SMTPRule is the faultproxy filter for the proxy in front of the SMTP
// server (faultproxy.StartFilter): it cuts, and answers an RCPT with
// Rcpt4xx when ArmRcpt armed it.
func (f *Faults) SMTPRule() faultproxy.Filter {
	return func(conn int, dir faultproxy.Dir, line []byte) faultproxy.Action {
		f.mu.Lock()
		s := f.smtp[conn]
		if s == nil {
			s = &smtpState{}
			f.smtp[conn] = s
		}
		a := s.see(f, dir, line)
		var wait time.Duration
		if a.Cut {
			delete(f.smtp, conn)
		} else if dir == faultproxy.Up && a.Reply == nil {
			wait = s.pace.pause(len(line), f.SMTPRate)
		}
		f.mu.Unlock()
		time.Sleep(wait)
		return a
	}
}

func (s *smtpState) see(f *Faults, dir faultproxy.Dir, line []byte) faultproxy.Action {
	cut := faultproxy.Action{Cut: true}
	switch {
	case dir == faultproxy.Up && s.phase == smtpData:
		end := string(line) == ".\r\n"
		if f.fire(SMTPMidData, s.lines, end) {
			return cut
		}
		if end {
			s.phase = smtpAfterDot
			s.pending++
		} else if bytes.HasSuffix(line, []byte("\n")) {
			s.lines++
		}
	case dir == faultproxy.Up:
		cmd, _ := verb(line)
		if cmd == "RCPT" && s.pending == 0 && f.rcpt > 0 {
			f.rcpt--
			f.rcpts++
			return faultproxy.Action{Reply: []byte(Rcpt4xx)}
		}
		s.pending++
		if cmd == "DATA" {
			s.phase = smtpAwait354
		}
	case !final(line):
	case !s.greeted && s.pending == 0:
		s.greeted = true
	default:
		s.pending = max(s.pending-1, 0)
		switch s.phase {
		case smtpAwait354:
			s.phase = smtpCommand
			if bytes.HasPrefix(line, []byte("354")) {
				s.phase, s.lines = smtpData, 0
			}
		case smtpAfterDot:
			s.phase = smtpCommand
			if f.fire(SMTPAfterDot, 0, true) {
				return cut
			}
		}
	}
	return faultproxy.Pass
}

// final reports whether an SMTP reply line is the last of its reply
// ("250 ok", not "250-ok"; RFC 5321 §4.2.1).
func final(line []byte) bool {
	return len(line) >= 4 && line[3] == ' ' || len(line) == 5 && string(line[3:]) == "\r\n"
}
