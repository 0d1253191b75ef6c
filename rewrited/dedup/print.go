package dedup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Print is what makes two copies of a message the same message: its
// Message-ID, its envelope sender and the SHA-256 of its body. Copies of
// one message fetched from two mailboxes differ in their trace headers
// (Received, Delivered-To, X-Popspool-Account), so the header is not
// hashed; a body changed on the way (a list's footer) makes another
// message, which is what keeps a false match from dropping mail.
type Print struct {
	MessageID string
	Sender    string
	body      [sha256.Size]byte
}

// maxHeader bounds the header section read for the Message-ID; rewrited
// has already refused a larger one (worker.maxHeader).
const maxHeader = 1 << 20

// Fingerprint reads a message (from its first header line, after the
// envelope lines) as a stream: the header line by line for the
// Message-ID, then the body through the hash, 64 KiB at a time, so its
// memory does not grow with the message. ok is false for a message
// without a Message-ID, which is never dropped.
func Fingerprint(r io.Reader, sender string) (p Print, ok bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	id, err := messageID(br)
	if err != nil {
		return Print{}, false, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, br); err != nil {
		return Print{}, false, fmt.Errorf("hash body: %w", err)
	}
	if id == "" {
		return Print{}, false, nil
	}
	p = Print{MessageID: id, Sender: strings.ToLower(sender)}
	h.Sum(p.body[:0])
	return p, true, nil
}

// messageID reads the header section up to and with its blank line and
// returns the value of its first Message-ID field, unfolded and trimmed.
func messageID(br *bufio.Reader) (string, error) {
	var id strings.Builder
	in, read := false, 0 // in: the current field is Message-ID (its continuation lines follow)
	for {
		line, err := readLine(br, maxHeader-read)
		read += len(line)
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return strings.TrimSpace(id.String()), nil // a header without a body
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		text := bytes.TrimRight(line, "\r\n")
		switch {
		case len(text) == 0:
			return strings.TrimSpace(id.String()), nil
		case text[0] == ' ' || text[0] == '\t':
			if in {
				id.Write(text)
			}
		default:
			in = false
			name, value, found := bytes.Cut(text, []byte(":"))
			if found && id.Len() == 0 && strings.EqualFold(string(bytes.TrimSpace(name)), "Message-ID") {
				in = true
				id.Write(value)
			}
		}
		if errors.Is(err, io.EOF) {
			return strings.TrimSpace(id.String()), nil
		}
	}
}

// errHeaderTooLong: the header section has no end within maxHeader.
var errHeaderTooLong = errors.New("header section larger than 1 MiB")

// readLine returns one line, its end included, of at most limit bytes.
// A line longer than the reader's buffer is gathered piece by piece; only
// a Message-ID line is kept whole by the caller, and it is short.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		piece, err := br.ReadSlice('\n')
		if len(line)+len(piece) > limit {
			return nil, errHeaderTooLong
		}
		line = append(line, piece...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// key is what the seen set holds for one recipient of a message: the
// first 16 bytes of the SHA-256 of the print and the address (the
// Message-ID and addresses themselves are not kept in state/).
type key [16]byte

func (p Print) key(rcpt string) key {
	h := sha256.New()
	for _, s := range []string{p.MessageID, p.Sender, strings.ToLower(rcpt)} {
		fmt.Fprintf(h, "%d:%s\x00", len(s), s)
	}
	h.Write(p.body[:])
	var k key
	copy(k[:], h.Sum(nil))
	return k
}
