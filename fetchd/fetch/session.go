package fetch

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// batchSize is how many messages share one journal fsync, one pair of
// folder fsyncs and one pipelined DELE round (group commit).
const batchSize = 32

// session is one POP3 session of one account.
type session struct {
	f       *Fetcher
	a       *config.Account
	c       *pop3.Client
	j       *uidls
	pending []sealed // sealed and recorded, not yet moved and DELE'd
	dele    []int
	stats   Stats
}

type sealed struct {
	path, id string
	num      int
}

// Stats counts what one poll did.
type Stats struct {
	Listed, Fetched, Deleted, Skipped int
	Bytes                             int64
}

// Poll runs one session for account a: it downloads every message not yet
// recorded in the account's journal and deletes on the server only what is
// durable in incoming/. stop ends the session early but cleanly: the
// message in hand is finished, the safe DELEs sent, and QUIT.
func (f *Fetcher) Poll(stop context.Context, a *config.Account) (Stats, error) {
	s := &session{f: f, a: a, j: f.journals[a.Name]}
	err := s.run(stop)
	ev := event.Emit(&f.Log, event.FetchSession).Str("account", a.Name).Int("listed", s.stats.Listed).
		Int("fetched", s.stats.Fetched).Int("deleted", s.stats.Deleted).Int("skipped", s.stats.Skipped).Int64("bytes", s.stats.Bytes)
	if err != nil {
		ev.Bool("ok", false).Msg("poll ended early")
	} else {
		ev.Bool("ok", true).Msg("poll done")
	}
	return s.stats, err
}

func (s *session) run(stop context.Context) error {
	if err := s.connect(); err != nil {
		return err
	}
	defer s.c.Close()
	msgs, err := s.listing()
	if err != nil {
		return s.protocolError(err)
	}
	for _, m := range msgs {
		if stop.Err() != nil {
			break
		}
		if err := s.one(m); err != nil {
			s.flush(false)
			return err
		}
	}
	if err := s.flush(true); err != nil {
		return err
	}
	if err := s.deleteOld(); err != nil {
		return s.protocolError(err)
	}
	if err := s.c.Quit(); err != nil {
		return s.protocolError(fmt.Errorf("QUIT: %w", err))
	}
	return s.j.forget(listedSet(msgs))
}

type message struct {
	num  int
	uidl string
	size int64
}

func listedSet(msgs []message) map[string]bool {
	m := make(map[string]bool, len(msgs))
	for _, x := range msgs {
		m[x.uidl] = true
	}
	return m
}

func (s *session) connect() error {
	a := s.a
	pass, err := a.Secret()
	if err != nil {
		event.Emit(&s.f.Log, event.Secret).Str("account", a.Name).Err(err).Msg("check password_file or password_env")
		return err
	}
	opts, err := dialOptions(a)
	if err != nil {
		return err
	}
	c, err := pop3.Dial(context.Background(), a.Server, opts)
	if err != nil {
		ev := event.ConnectFailed
		if isTLSError(err) {
			ev = event.TLSFailed
		}
		event.Emit(&s.f.Log, ev).Str("account", a.Name).Str("server", a.Server).Err(err).Msg("cannot reach the mailbox")
		return err
	}
	s.c = c
	if _, err := c.Capabilities(); err != nil {
		c.Close()
		return s.protocolError(err)
	}
	if err := c.Login(a.Username, pass); err != nil {
		c.Close()
		return s.loginError(err)
	}
	return nil
}

func dialOptions(a *config.Account) (pop3.Options, error) {
	o := pop3.Options{Timeout: a.Timeout.D(), AllowPlaintext: a.AllowPlaintext}
	switch a.TLS {
	case "implicit":
		o.TLS = pop3.TLSImplicit
	case "starttls":
		o.TLS = pop3.TLSStartTLS
	}
	o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if a.CAFile != "" {
		pem, err := os.ReadFile(a.CAFile)
		if err != nil {
			return o, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("ca_file %s: no PEM certificate in it", a.CAFile)
		}
		o.TLSConfig.RootCAs = pool
	}
	return o, nil
}

func isTLSError(err error) bool {
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &ua) || errors.As(err, &hn) ||
		errors.As(err, &ci) || strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "STLS")
}

func (s *session) loginError(err error) error {
	var pe *pop3.Error
	// A bare -ERR to PASS is most often a wrong password (RFC 3206 added
	// codes to tell); only the codes that say so mean "try later".
	if errors.As(err, &pe) && pe.Code != "" && pe.Temporary() {
		event.Emit(&s.f.Log, event.MailboxInUse).Str("account", s.a.Name).Str("code", pe.Code).Err(err).Msg("will try again later")
		return err
	}
	if errors.As(err, &pe) {
		event.Emit(&s.f.Log, event.LoginFailed).Str("account", s.a.Name).Str("user", s.a.Username).Err(err).Msg("check username and password")
		return err
	}
	if strings.Contains(err.Error(), "TLS") || strings.Contains(err.Error(), "plaintext") || strings.Contains(err.Error(), "clear") {
		event.Emit(&s.f.Log, event.Plaintext).Str("account", s.a.Name).Err(err).Msg("use tls = implicit or starttls")
		return err
	}
	return s.protocolError(err)
}

func (s *session) protocolError(err error) error {
	var ne net.Error
	ev := event.ProtocolError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		ev = event.SessionTimeout
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded):
		ev = event.SessionCut
	}
	event.Emit(&s.f.Log, ev).Str("account", s.a.Name).Err(err).Msg("session ended; messages on disk are kept, nothing unsafe was deleted")
	return err
}

// listing returns the messages with their UIDLs and sizes. A server
// without UIDL gets a digest of each message's header instead.
func (s *session) listing() ([]message, error) {
	sizes, err := s.c.List()
	if err != nil {
		return nil, fmt.Errorf("LIST: %w", err)
	}
	uids, err := s.c.UIDL()
	var pe *pop3.Error
	if errors.As(err, &pe) {
		event.Emit(&s.f.Log, event.NoUIDL).Str("account", s.a.Name).Msg("identifying messages by a digest of their header")
		return s.digests(sizes)
	}
	if err != nil {
		event.Emit(&s.f.Log, event.UIDLRejected).Str("account", s.a.Name).Err(err).Msg("not fetching: messages could not be told apart safely")
		return nil, fmt.Errorf("UIDL: %w", err)
	}
	size := make(map[int]int64, len(sizes))
	for _, m := range sizes {
		size[m.Num] = m.Size
	}
	msgs := make([]message, 0, len(uids))
	for _, u := range uids {
		msgs = append(msgs, message{num: u.Num, uidl: u.UID, size: size[u.Num]})
	}
	s.stats.Listed = len(msgs)
	return msgs, nil
}

func (s *session) digests(sizes []pop3.MsgInfo) ([]message, error) {
	msgs := make([]message, 0, len(sizes))
	for _, m := range sizes {
		h := sha256.New()
		if _, err := s.c.Top(m.Num, 0, h); err != nil {
			return nil, fmt.Errorf("TOP %d 0: %w", m.Num, err)
		}
		uid := "sha256-" + hex.EncodeToString(h.Sum(nil)[:16])
		msgs = append(msgs, message{num: m.Num, uidl: uid, size: m.Size})
	}
	s.stats.Listed = len(msgs)
	return msgs, nil
}

// one handles one listed message: known ones are only deleted (again);
// new ones are downloaded, sealed and recorded.
func (s *session) one(m message) error {
	if rec, ok := s.j.seen[m.uidl]; ok {
		if s.deleteKnown(rec) {
			s.dele = append(s.dele, m.num)
		}
		return nil
	}
	if max := int64(s.a.MaxSize); max > 0 && m.size > max {
		s.stats.Skipped++
		event.Emit(&s.f.Log, event.TooBig).Str("account", s.a.Name).Int64("size", m.size).Int64("max_size", max).Str("uidl_hash", uidlHash(m.uidl)).Msg("left on the server")
		return nil
	}
	id, err := s.download(m)
	if err != nil {
		return err
	}
	if err := s.j.add(m.uidl, id, time.Now()); err != nil {
		return err
	}
	s.pending = append(s.pending, sealed{path: partPath(s.f.S, id), id: id, num: m.num})
	if len(s.pending) >= batchSize {
		return s.flush(true)
	}
	return nil
}

// deleteKnown says whether an already fetched message should be deleted
// from the server now.
func (s *session) deleteKnown(rec record) bool {
	if !s.a.Keep {
		return true
	}
	return s.a.KeepDays > 0 && time.Since(rec.at) > time.Duration(s.a.KeepDays)*24*time.Hour
}

func partPath(s *spool.Spool, id string) string {
	return s.TmpDir() + string(os.PathSeparator) + id + ".part"
}

func uidlHash(u string) string {
	h := sha256.Sum256([]byte(u))
	return hex.EncodeToString(h[:6])
}

// download streams RETR into tmp/fetchd/<id>.part after the trace header
// lines, and seals it.
func (s *session) download(m message) (string, error) {
	id := spool.NewID()
	p, err := s.f.S.Create(id)
	if err != nil {
		return "", s.spoolError(err)
	}
	w := bufio.NewWriterSize(p, 64<<10)
	fmt.Fprint(w, s.f.traceHeader(s.a, m.uidl, id))
	n, err := s.c.Retr(m.num, w)
	if err != nil {
		p.Abort()
		var pe *pop3.Error
		if errors.As(err, &pe) || !isWriteError(err) {
			return "", s.protocolError(fmt.Errorf("RETR %d: %w", m.num, err))
		}
		return "", s.spoolError(err)
	}
	if err := w.Flush(); err != nil {
		p.Abort()
		return "", s.spoolError(err)
	}
	if err := p.Seal(); err != nil {
		os.Remove(p.Name())
		return "", s.spoolError(err)
	}
	if m.size > 0 && n != m.size {
		event.Emit(&s.f.Log, event.SizeMismatch).Str("account", s.a.Name).Str("id", id).Int64("list_size", m.size).Int64("got", n).Msg("kept as received")
	}
	s.stats.Fetched++
	s.stats.Bytes += n
	event.Emit(&s.f.Log, event.Fetched).Str("account", s.a.Name).Str("id", id).Int64("size", n).Str("uidl_hash", uidlHash(m.uidl)).Msg("fetched")
	return id, nil
}

// isWriteError tells a failure of our disk from one of the connection.
func isWriteError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) || spool.IsNoSpace(err)
}

func (s *session) spoolError(err error) error {
	ev := event.SpoolIO
	if spool.IsNoSpace(err) {
		ev = event.DiskFull
	}
	event.Emit(&s.f.Log, ev).Str("account", s.a.Name).Err(err).Msg("fetching stopped; nothing unsafe deleted on the server")
	return err
}

// flush makes the pending messages durable (one journal fsync), moves them
// into incoming/ (one fsync per folder) and then, if dele, deletes them on
// the server: durable before irreversible.
func (s *session) flush(dele bool) error {
	if len(s.pending) == 0 {
		return nil
	}
	if err := s.j.sync(); err != nil {
		return s.spoolError(err)
	}
	b := s.f.S.NewBatch()
	var nums []int
	for _, p := range s.pending {
		if _, err := b.Move(p.path, spool.Incoming, p.id); err != nil {
			return s.spoolError(err) // still in tmp/ with a record: moved on at the next start
		}
		nums = append(nums, p.num)
	}
	s.pending = s.pending[:0]
	if err := b.Commit(); err != nil {
		return err
	}
	if !dele || s.a.Keep {
		return nil
	}
	if err := s.c.DeleMany(nums); err != nil {
		return s.protocolError(fmt.Errorf("DELE: %w", err))
	}
	s.stats.Deleted += len(nums)
	return nil
}

// deleteOld deletes messages fetched in an earlier session that the server
// still lists (the earlier session was cut before QUIT, RFC 1939 §6).
func (s *session) deleteOld() error {
	if len(s.dele) == 0 {
		return nil
	}
	if err := s.c.DeleMany(s.dele); err != nil {
		return fmt.Errorf("DELE: %w", err)
	}
	s.stats.Deleted += len(s.dele)
	event.Emit(&s.f.Log, event.Redeleted).Str("account", s.a.Name).Int("count", len(s.dele)).Msg("deleted messages fetched before")
	return nil
}
