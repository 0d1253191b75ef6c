package queue

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"

	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
)

// envReader reads the envelope lines of one file at a time; the queue's
// workers take one from envReaders for each file, so its 16 KiB buffer is
// made once per worker, not once per message.
type envReader struct {
	f  *os.File
	n  int64 // bytes read from f: the offset of the message is n minus what br holds
	br *bufio.Reader
}

var envReaders = sync.Pool{New: func() any {
	r := &envReader{}
	r.br = bufio.NewReaderSize(r, 16<<10)
	return r
}}

func (r *envReader) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	r.n += int64(n)
	return n, err
}

// readEnvelope opens the spool file at path, reads its envelope lines and
// locates the message after them. On success the file stays open in the
// Msg, whose reads come from the same descriptor: the caller closes it
// (Msg.close), before it renames or removes the file. The size is the
// one spool.OpenSized's fstat found, so an operator's append to a claimed
// file after its open is not sent, nor is any file renamed over its path.
func readEnvelope(path string) (envelope.Envelope, Msg, error) {
	f, size, err := spool.OpenSized(path)
	if err != nil {
		return envelope.Envelope{}, Msg{}, err
	}
	r := envReaders.Get().(*envReader)
	r.f, r.n = f, 0
	r.br.Reset(r)
	env, err := envelope.Read(r.br)
	// The reader has buffered at most its size beyond the envelope.
	off := r.n - int64(r.br.Buffered())
	r.f = nil
	r.br.Reset(r)
	envReaders.Put(r)
	if err != nil {
		f.Close()
		return env, Msg{}, err
	}
	return env, Msg{Path: path, Offset: off, Size: max(0, size-off), f: f}, nil
}

// envelopeOf reads the envelope lines of the spool file at path.
func envelopeOf(path string) (envelope.Envelope, error) {
	env, msg, err := readEnvelope(path)
	msg.close()
	return env, err
}

// rewriteEnvelope writes env and the message of the file at path into w.
func rewriteEnvelope(path string, env envelope.Envelope, w io.Writer) error {
	_, msg, err := readEnvelope(path)
	if err != nil {
		msg = Msg{Path: path} // keep every byte of a file we cannot read
		fi, serr := os.Stat(path)
		if serr != nil {
			return serr
		}
		msg.Size = fi.Size()
	}
	defer msg.close()
	r, err := msg.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := env.Write(bw); err != nil {
		return err
	}
	if _, err := bw.ReadFrom(r); err != nil {
		return fmt.Errorf("copy message: %w", err)
	}
	return bw.Flush()
}
