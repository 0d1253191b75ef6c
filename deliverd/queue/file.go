package queue

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
)

// readEnvelope reads the envelope lines of a spool file and locates the
// message after them.
func readEnvelope(path string) (envelope.Envelope, Msg, error) {
	f, err := spool.OpenFile(path)
	if err != nil {
		return envelope.Envelope{}, Msg{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return envelope.Envelope{}, Msg{}, err
	}
	br := bufio.NewReaderSize(f, 16<<10)
	env, err := envelope.Read(br)
	if err != nil {
		return env, Msg{}, err
	}
	// The reader has buffered at most its size beyond the envelope.
	off, err := f.Seek(0, 1)
	if err != nil {
		return env, Msg{}, err
	}
	off -= int64(br.Buffered())
	return env, Msg{Path: path, Offset: off, Size: fi.Size() - off}, nil
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
