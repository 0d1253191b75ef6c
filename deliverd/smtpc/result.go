package smtpc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
)

// Status is the outcome for one recipient.
type Status struct {
	Rcpt string
	// Code is the reply that decided this recipient: the RCPT reply if it
	// was refused, else the MAIL, DATA or final-dot reply (SMTP: shared by
	// all accepted recipients; LMTP: one per recipient, RFC 2033 §4.2).
	// 0 means no verdict: Send returned an error before one arrived.
	// Replies smtpc makes up itself (SIZE, SMTPUTF8, bad syntax) have a Msg
	// starting with "smtpc:".
	Code     int
	Enhanced string // RFC 3463 "class.subject.detail"; "" if none was sent
	Msg      string
	// Exactly one is true when Code != 0: 2xx OK, 5xx Permanent, anything
	// else Temporary.
	OK, Temporary, Permanent bool
}

// Result holds one Status per recipient given to Send, in the same order.
type Result struct {
	Rcpts []Status
}

func newStatus(code int, enhanced, msg string) Status {
	s := Status{Code: code, Enhanced: enhanced, Msg: msg}
	s.OK = code/100 == 2
	s.Permanent = code/100 == 5
	s.Temporary = code != 0 && !s.OK && !s.Permanent
	return s
}

func smtpErrorStatus(e *smtp.SMTPError) Status {
	enh := ""
	if c := e.EnhancedCode; c != smtp.EnhancedCodeNotSet && c != smtp.NoEnhancedCode {
		enh = fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
	}
	return newStatus(e.Code, enh, e.Message)
}

// replyToStatus splits an RFC 2034 enhanced code off the reply text.
func replyToStatus(code int, text string) Status {
	first, rest, _ := strings.Cut(text, " ")
	if !isEnhanced(first) {
		return newStatus(code, "", text)
	}
	rest = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return newStatus(code, first, rest)
}

func isEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || len(p) > 3 {
			return false
		}
	}
	return true
}

// tx tracks one transaction. Duplicate recipients share one RCPT.
type tx struct {
	res      Result
	at       map[string][]int // recipient -> indexes in res.Rcpts
	order    []string         // distinct recipients, in order
	accepted []string         // recipients whose RCPT got a 2xx
	orcpt    map[string]string
}

func newTx(rcpts []string) *tx {
	t := &tx{res: Result{Rcpts: make([]Status, len(rcpts))}, at: map[string][]int{}}
	for i, r := range rcpts {
		t.res.Rcpts[i].Rcpt = r
		if _, dup := t.at[r]; !dup {
			t.order = append(t.order, r)
		}
		t.at[r] = append(t.at[r], i)
	}
	return t
}

func (t *tx) set(rcpt string, s Status) {
	for _, i := range t.at[rcpt] {
		s.Rcpt = t.res.Rcpts[i].Rcpt
		t.res.Rcpts[i] = s
	}
}

// setOpen gives s to every recipient still without a verdict.
func (t *tx) setOpen(s Status) {
	for _, r := range t.order {
		if t.res.Rcpts[t.at[r][0]].Code == 0 {
			t.set(r, s)
		}
	}
}

// open lists the recipients still without a verdict.
func (t *tx) open() []string {
	var l []string
	for _, r := range t.order {
		if t.res.Rcpts[t.at[r][0]].Code == 0 {
			l = append(l, r)
		}
	}
	return l
}
