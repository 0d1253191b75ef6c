//go:build linux

package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"example.org/popspool/spooltest/chaos"
	"example.org/popspool/spooltest/measure"
)

// BenchmarkFloor is the file work of one 10 KiB message and nothing else
// (issue 12: "what a bare loop of write+fsync+rename costs on this
// disk"): no daemons, no network, no parsing, one goroutine making the
// system calls directly, on the filesystem of os.TempDir() (set TMPDIR).
//
//	go test -run '^$' -bench Floor -benchtime 2000x -count 3 ./spooltest/bench
//
// mpop: what mpop's "delivery maildir" does per message: create in tmp/,
// write, fsync, link into new/, unlink the tmp/ name; no folder fsync.
// maildir-careful: the same with new/ fsynced after each message.
// popspool-min: the least the three stages' handoffs can do, in one
// process, a batch at a time: fetchd writes tmp/fetchd/<id>.part, one
// syncfs for the batch, renames into incoming/, fsyncs incoming/ and
// tmp/fetchd/; rewrited reads the file, writes tmp/rewrited/<id>.part
// (new envelope lines, the message copied by copy_file_range), one
// syncfs, renames into pickup/, fsyncs pickup/, unlinks the originals,
// fsyncs incoming/; deliverd reads it, writes the Maildir's tmp/ file
// the same way, one syncfs, renames into new/, fsyncs new/, unlinks the
// pickup/ file, fsyncs pickup/. A batch of fewer than 4 fsyncs each file
// instead of a syncfs, as spool.Group does. popspool-min-nosync: the same
// without any fsync or syncfs. popspool-protocol: popspool-min plus what
// the protocol of today's daemons adds to the file work: the claims
// (rename into tmp/<daemon>/, both folders fsynced per batch), the mtime
// set back on every part, fetchd's UIDL journal (a record a message, an
// fsync a batch), deliverd's ledger (the batch's S records with one
// fsync, a D a message unsynced) and the extra folder fsyncs of
// spool.Batch; the Maildir writes batched like the other two stages.
//
// Each reports wall, this process's CPU (user+system), and the CPU of
// every kernel thread on the machine during the run (writeback, journal
// and loop workers: syncfs hands its writeback to them, fsync does it in
// the caller; other programs' writeback counts there too), per message;
// and the messages a second two cores could take if they did nothing
// else, from the process's CPU and from both.
func BenchmarkFloor(b *testing.B) {
	fmt.Printf("floor: %s\n", chaos.Environment(os.TempDir()))
	b.Run("mpop", func(b *testing.B) { floor(b, 1, newMaildirLoop(false)) })
	b.Run("maildir-careful", func(b *testing.B) { floor(b, 1, newMaildirLoop(true)) })
	for _, n := range []int{1, 32} {
		b.Run(fmt.Sprintf("popspool-min/batch-%d", n), func(b *testing.B) {
			floor(b, n, newPipeline(pipeOpts{sync: true}))
		})
	}
	b.Run("popspool-min-nosync/batch-32", func(b *testing.B) { floor(b, 32, newPipeline(pipeOpts{})) })
	b.Run("popspool-protocol/batch-32", func(b *testing.B) {
		floor(b, 32, newPipeline(pipeOpts{sync: true, protocol: true}))
	})
	b.Run("popspool-spares/batch-32", func(b *testing.B) {
		floor(b, 32, newPipeline(pipeOpts{sync: true, protocol: true, spares: true}))
	})
	b.Run("popspool-recycle/batch-32", func(b *testing.B) {
		floor(b, 32, newPipeline(pipeOpts{sync: true, protocol: true, spares: true, recycle: true}))
	})
}

// floorMsgSize is the message's size, as fetched.
const floorMsgSize = 10 << 10

// floorMessage is a 10 KiB message with a short header.
var floorMessage = func() []byte {
	head := "Received: from isp.example\r\nFrom: <a@isp.example>\r\nTo: <b@contoso.local>\r\nSubject: floor\r\n\r\n"
	body := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\r\n"), floorMsgSize/66+1)
	return append([]byte(head), body...)[:floorMsgSize]
}()

// doBatch handles messages first to first+n-1 as one batch.
type doBatch func(first, n int) error

// newLoop sets a loop up in dir and returns its batch and its clean-up.
type newLoop func(b *testing.B, dir string) (doBatch, func())

// floor runs b.N messages through a loop, batch at a time, and reports
// the figures per message.
func floor(b *testing.B, batch int, mk newLoop) {
	do, done := mk(b, b.TempDir())
	defer done()
	unix.Sync() // the set-up's and earlier runs' dirty data is not this run's
	p0, c0, cpu0 := readProcs(), readCPU(), measure.CPU()
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; {
		k := min(batch, b.N-i)
		if err := do(i, k); err != nil {
			b.Fatal(err)
		}
		i += k
	}
	b.StopTimer()
	wall, cpu := time.Since(start), measure.CPU()-cpu0
	p1, c1 := readProcs(), readCPU()
	n := float64(b.N)
	cpuUS := float64(cpu.Microseconds()) / n
	kthUS := float64(kthreadTicks(p0, p1)) * 1e6 / userHZ / n
	b.ReportMetric(float64(wall.Microseconds())/n, "µs/msg")
	b.ReportMetric(cpuUS, "cpu-µs/msg")
	b.ReportMetric(kthUS, "kthread-µs/msg")
	b.ReportMetric(n/wall.Seconds(), "msgs/s")
	b.ReportMetric(2e6/cpuUS, "msgs/s-2cores")
	b.ReportMetric(2e6/(cpuUS+kthUS), "msgs/s-2cores-kthreads")
	if busy, ok := busyPercent(c0, c1); ok {
		b.ReportMetric(busy, "machine-busy-%")
	}
}

// kthreadTicks is the CPU time, in USER_HZ ticks, of the kernel threads
// (kthreadd and its children) between a and b; one started in between
// counts whole.
func kthreadTicks(a, b procTimes) uint64 {
	var sum uint64
	for pid, p := range b {
		if pid != 2 && p.ppid != 2 {
			continue
		}
		d := p.ticks
		if q, ok := a[pid]; ok && q.start == p.start && q.ticks <= p.ticks {
			d -= q.ticks
		}
		sum += d
	}
	return sum
}

// floorID is message i's spool id (any unique name does here).
func floorID(i int) string { return fmt.Sprintf("floor%07d", i) }

// openDirs makes the folders under root and opens each.
func openDirs(b *testing.B, root string, names ...string) []int {
	fds := make([]int, len(names))
	for i, name := range names {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatalf("open %s: %v", dir, err)
		}
		fds[i] = fd
	}
	return fds
}

func closeAll(fds ...int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// create makes dir/name, new, for writing.
func create(dir int, name string) (int, error) {
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, fmt.Errorf("create %s: %w", name, err)
	}
	return fd, nil
}

// writeAll writes each of bufs to fd, whole.
func writeAll(fd int, bufs ...[]byte) error {
	for _, p := range bufs {
		for len(p) > 0 {
			n, err := unix.Write(fd, p)
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			p = p[n:]
		}
	}
	return nil
}

func fsync(fd int, what string) error {
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("fsync %s: %w", what, err)
	}
	return nil
}

// moveNoReplace renames from/name to to/newName, never replacing a file.
func moveNoReplace(from int, name string, to int, newName string) error {
	if err := unix.Renameat2(from, name, to, newName, unix.RENAME_NOREPLACE); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	return nil
}

func unlink(dir int, name string) error {
	if err := unix.Unlinkat(dir, name, 0); err != nil {
		return fmt.Errorf("unlink %s: %w", name, err)
	}
	return nil
}

// newMaildirLoop is mpop's Maildir delivery, with careful also new/
// fsynced after each message.
func newMaildirLoop(careful bool) newLoop {
	return func(b *testing.B, dir string) (doBatch, func()) {
		fds := openDirs(b, dir, "md/tmp", "md/new", "md/cur")
		tmp, nw := fds[0], fds[1]
		do := func(first, n int) error {
			for i := first; i < first+n; i++ {
				if err := mpopOne(tmp, nw, floorID(i), careful); err != nil {
					return err
				}
			}
			return nil
		}
		return do, func() { closeAll(fds...) }
	}
}

func mpopOne(tmp, nw int, id string, careful bool) error {
	name := id + ".mpop"
	fd, err := create(tmp, name)
	if err != nil {
		return err
	}
	err = writeAll(fd, floorMessage)
	if err == nil {
		err = fsync(fd, name)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", name, cerr)
	}
	if err != nil {
		return err
	}
	if err := unix.Linkat(tmp, name, nw, name, 0); err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := unlink(tmp, name); err != nil {
		return err
	}
	if careful {
		return fsync(nw, "new/")
	}
	return nil
}

// pipeOpts choose the pipeline's variant: sync makes every handoff
// durable (else no fsync or syncfs at all); protocol adds the file work
// of today's protocol beyond the minimum; spares has rewrited write its
// parts over the last batch's claimed originals (spool.Retire) instead
// of creating them and unlinking the originals; recycle (not popspool's
// protocol: a measure of what it could gain) also has deliverd hand its
// delivered files to fetchd, which writes its next parts over them, so
// that in the steady state the spool creates and frees no inode.
type pipeOpts struct{ sync, protocol, spares, recycle bool }

// pipeline is the three stages' file work in one process.
type pipeline struct {
	pipeOpts
	// spool folders, then the Maildir's
	fetchTmp, rewriteTmp, deliverTmp, incoming, pickup, state, mdTmp, mdNew int
	journal, ledger                                                         int
	buf                                                                     []byte
	spareNames                                                              []string // in tmp/rewrited, ready
	fetchSpares                                                             []string // in tmp/fetchd, ready (recycle)
	spareSeq                                                                int
}

func newPipeline(o pipeOpts) newLoop {
	return func(b *testing.B, dir string) (doBatch, func()) {
		fds := openDirs(b, dir, "tmp/fetchd", "tmp/rewrited", "tmp/deliverd", "incoming", "pickup", "state", "md/tmp", "md/new", "md/cur")
		p := &pipeline{pipeOpts: o, buf: make([]byte, 16<<10)}
		p.fetchTmp, p.rewriteTmp, p.deliverTmp, p.incoming, p.pickup, p.state, p.mdTmp, p.mdNew = fds[0], fds[1], fds[2], fds[3], fds[4], fds[5], fds[6], fds[7]
		p.journal, p.ledger = openLog(b, p.state, "uidl.journal"), openLog(b, p.state, "deliverd.ledger")
		fds = append(fds, p.journal, p.ledger)
		do := func(first, n int) error {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = floorID(first + i)
			}
			if err := p.fetch(ids); err != nil {
				return err
			}
			if err := p.rewrite(ids); err != nil {
				return err
			}
			return p.deliver(ids)
		}
		return do, func() { closeAll(fds...) }
	}
}

// openLog opens state/name for appending records.
func openLog(b *testing.B, state int, name string) int {
	fd, err := unix.Openat(state, name, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		b.Fatalf("open %s: %v", name, err)
	}
	return fd
}

// syncfsFrom is spool.Group's: a smaller group fsyncs each file.
const syncfsFrom = 4

// eachSync says whether each file of a batch of n is fsynced itself.
func (p *pipeline) eachSync(n int) bool { return p.sync && n < syncfsFrom }

// groupSync makes a batch of n files written since the last one
// durable: one syncfs on anchor, unless each was fsynced.
func (p *pipeline) groupSync(anchor, n int) error {
	if !p.sync || n < syncfsFrom {
		return nil
	}
	if err := unix.Syncfs(anchor); err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	return nil
}

// dirSync fsyncs folders (if sync).
func (p *pipeline) dirSync(dirs ...int) error {
	if !p.sync {
		return nil
	}
	for _, d := range dirs {
		if err := fsync(d, "folder"); err != nil {
			return err
		}
	}
	return nil
}

// seal sets a part's mtime back, as spool.Part.Close does (protocol).
func (p *pipeline) seal(dir int, name string) error {
	if !p.protocol {
		return nil
	}
	old := unix.NsecToTimespec(time.Now().Add(-time.Hour).UnixNano())
	if err := unix.UtimesNanoAt(dir, name, []unix.Timespec{old, old}, 0); err != nil {
		return fmt.Errorf("utimensat %s: %w", name, err)
	}
	return nil
}

// closePart fsyncs fd when each file of the batch is synced, and closes it.
func (p *pipeline) closePart(fd int, name string, n int) error {
	var err error
	if p.eachSync(n) {
		err = fsync(fd, name)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", name, cerr)
	}
	return err
}

const (
	fetchedEnvelope  = "X-Sender: <a@isp.example>\r\nX-Receiver: <office@isp.example>\r\nX-Popspool-Account: office\r\n"
	routedEnvelope   = "X-Sender: <a@isp.example>\r\nX-Receiver: <b@contoso.local> ORCPT=rfc822;office@isp.example\r\nReceived: from isp.example (popspool fetchd; account office) by office.contoso.local; Mon, 7 Dec 2026 10:00:00 +0000\r\n"
	deliveredHeading = "Return-Path: <a@isp.example>\r\nDelivered-To: b@contoso.local\r\n"
)

// fetch is fetchd's part: the batch's downloads written into
// tmp/fetchd/, synced together, renamed into incoming/.
func (p *pipeline) fetch(ids []string) error {
	n := len(ids)
	parts := make([]string, n)
	for i, id := range ids {
		part, fd, err := p.fetchPart(id)
		if err != nil {
			return err
		}
		parts[i] = part
		err = writeAll(fd, []byte(fetchedEnvelope), floorMessage)
		if err == nil && part != id+".part" { // written over a recycled file
			err = unix.Ftruncate(fd, int64(len(fetchedEnvelope)+len(floorMessage)))
		}
		if err != nil {
			unix.Close(fd)
			return err
		}
		if err := p.seal(p.fetchTmp, part); err != nil {
			unix.Close(fd)
			return err
		}
		if err := p.closePart(fd, part, n); err != nil {
			return err
		}
		if p.protocol {
			if err := writeAll(p.journal, []byte("F "+id+" UIDL-"+id+"\n")); err != nil {
				return err
			}
		}
	}
	if err := p.groupSync(p.fetchTmp, n); err != nil {
		return err
	}
	if p.protocol { // the parts' names, then the journal, before the DELEs
		if err := p.dirSync(p.fetchTmp, p.journal); err != nil { // dirSync fsyncs any descriptor
			return err
		}
	}
	for i, id := range ids {
		if err := moveNoReplace(p.fetchTmp, parts[i], p.incoming, id+".eml"); err != nil {
			return err
		}
	}
	return p.dirSync(p.incoming, p.fetchTmp)
}

// fetchPart opens the part for id: a recycled file to write over, or a
// new <id>.part.
func (p *pipeline) fetchPart(id string) (string, int, error) {
	if k := len(p.fetchSpares); k > 0 {
		name := p.fetchSpares[k-1]
		p.fetchSpares = p.fetchSpares[:k-1]
		fd, err := unix.Openat(p.fetchTmp, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", -1, fmt.Errorf("open %s: %w", name, err)
		}
		return name, fd, nil
	}
	fd, err := create(p.fetchTmp, id+".part")
	return id + ".part", fd, err
}

// rewrite is rewrited's part: each file read, its routed version written
// in tmp/rewrited/ (the message copied in the kernel), the batch synced
// together, renamed into pickup/, the originals removed.
func (p *pipeline) rewrite(ids []string) error {
	src := p.incoming
	if p.protocol {
		if err := p.claim(ids, p.incoming, p.rewriteTmp); err != nil {
			return err
		}
		src = p.rewriteTmp
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id + ".part"
		over := p.spares && len(p.spareNames) > 0
		if over {
			parts[i], p.spareNames = p.spareNames[len(p.spareNames)-1], p.spareNames[:len(p.spareNames)-1]
		}
		if err := p.copyOne(src, id+".eml", p.rewriteTmp, parts[i], routedEnvelope, len(ids), over); err != nil {
			return err
		}
	}
	if err := p.groupSync(p.rewriteTmp, len(ids)); err != nil {
		return err
	}
	for i, id := range ids {
		if err := moveNoReplace(p.rewriteTmp, parts[i], p.pickup, id+".eml"); err != nil {
			return err
		}
	}
	moved := []int{p.pickup}
	if p.protocol {
		moved = append(moved, p.rewriteTmp) // spool.Batch fsyncs both ends
	}
	if err := p.dirSync(moved...); err != nil {
		return err
	}
	if p.spares && p.protocol {
		return p.retire(ids)
	}
	for _, id := range ids {
		if err := unlink(src, id+".eml"); err != nil {
			return err
		}
	}
	return p.dirSync(src)
}

// retire renames the claimed originals in tmp/rewrited to spare names
// and fsyncs the folder, after which the next batch writes over them.
func (p *pipeline) retire(ids []string) error {
	var names []string
	for _, id := range ids {
		p.spareSeq++
		name := fmt.Sprintf("%d.spare", p.spareSeq)
		if err := moveNoReplace(p.rewriteTmp, id+".eml", p.rewriteTmp, name); err != nil {
			return err
		}
		names = append(names, name)
	}
	if err := p.dirSync(p.rewriteTmp); err != nil {
		return err
	}
	p.spareNames = append(p.spareNames, names...)
	return nil
}

// deliver is deliverd's part into a Maildir: each file read, its Maildir
// copy written in tmp/, the batch synced together, renamed into new/,
// the pickup/ files removed.
func (p *pipeline) deliver(ids []string) error {
	src := p.pickup
	if p.protocol {
		if err := p.claim(ids, p.pickup, p.deliverTmp); err != nil {
			return err
		}
		src = p.deliverTmp
		if err := p.ledgerStart(ids); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if err := p.copyOne(src, id+".eml", p.mdTmp, id+".popspool", deliveredHeading, len(ids), false); err != nil {
			return err
		}
	}
	if err := p.groupSync(p.mdTmp, len(ids)); err != nil {
		return err
	}
	for _, id := range ids {
		if err := moveNoReplace(p.mdTmp, id+".popspool", p.mdNew, id+".popspool"); err != nil {
			return err
		}
	}
	if p.protocol {
		if err := p.dirSync(p.mdNew, p.mdTmp); err != nil { // as maildir.Writer does
			return err
		}
		return p.ledgerDone(ids, src)
	}
	if err := p.dirSync(p.mdNew); err != nil {
		return err
	}
	for _, id := range ids {
		if err := unlink(src, id+".eml"); err != nil {
			return err
		}
	}
	return p.dirSync(src)
}

// claim renames the batch's files from one folder into the daemon's
// tmp/ folder and fsyncs both, as spool.Batch.Claim and Commit do.
func (p *pipeline) claim(ids []string, from, to int) error {
	for _, id := range ids {
		if err := moveNoReplace(from, id+".eml", to, id+".eml"); err != nil {
			return err
		}
	}
	return p.dirSync(to, from)
}

// ledgerStart writes the batch's S records in one write and fsyncs them.
func (p *pipeline) ledgerStart(ids []string) error {
	var rec strings.Builder
	for _, id := range ids {
		rec.WriteString("S " + id + "\n")
	}
	if err := writeAll(p.ledger, []byte(rec.String())); err != nil {
		return err
	}
	return p.dirSync(p.ledger)
}

// ledgerDone writes a D record per delivered file, unsynced (the next
// batch's S fsync covers it), and removes the file, with no folder fsync:
// the ledger is the truth.
func (p *pipeline) ledgerDone(ids []string, src int) error {
	var recycled []string
	for _, id := range ids {
		if err := writeAll(p.ledger, []byte("D "+id+"\n")); err != nil {
			return err
		}
		if !p.recycle {
			if err := unlink(src, id+".eml"); err != nil {
				return err
			}
			continue
		}
		p.spareSeq++
		name := fmt.Sprintf("%d.spare", p.spareSeq)
		if err := moveNoReplace(src, id+".eml", p.fetchTmp, name); err != nil {
			return err
		}
		recycled = append(recycled, name)
	}
	if len(recycled) == 0 {
		return nil
	}
	if err := p.dirSync(p.fetchTmp); err != nil { // durable before written over
		return err
	}
	p.fetchSpares = append(p.fetchSpares, recycled...)
	return nil
}

// copyOne reads from/name (up to 16 KiB, as rewrited's header buffer)
// and writes to/newName: head, then the message after the envelope lines
// copied by copy_file_range; with over, newName exists (a spare) and is
// written over and cut to its new length.
func (p *pipeline) copyOne(from int, name string, to int, newName, head string, n int, over bool) error {
	in, err := unix.Openat(from, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer unix.Close(in)
	k, err := unix.Read(in, p.buf)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	off := int64(envelopeEnd(p.buf[:k]))
	var out int
	if over {
		out, err = unix.Openat(to, newName, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	} else {
		out, err = create(to, newName)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", newName, err)
	}
	err = p.writeCopy(out, in, off, head, newName, int64(k)-off)
	if err == nil && over {
		err = unix.Ftruncate(out, int64(len(head))+int64(k)-off)
	}
	if err != nil {
		unix.Close(out)
		return err
	}
	if err := p.seal(to, newName); err != nil {
		unix.Close(out)
		return err
	}
	return p.closePart(out, newName, n)
}

// writeCopy writes head to out, then size bytes of in from off.
func (p *pipeline) writeCopy(out, in int, off int64, head, name string, size int64) error {
	if err := writeAll(out, []byte(head)); err != nil {
		return err
	}
	for size > 0 {
		c, err := unix.CopyFileRange(in, &off, out, nil, int(size), 0)
		if err != nil {
			return fmt.Errorf("copy_file_range %s: %w", name, err)
		}
		if c == 0 {
			return fmt.Errorf("copy_file_range %s: short file", name)
		}
		size -= int64(c)
	}
	return nil
}

// envelopeEnd is the offset of the message after a spool file's
// envelope lines (X-Sender, X-Receiver and popspool's own X- lines).
func envelopeEnd(b []byte) int {
	off := 0
	for {
		line, _, ok := bytes.Cut(b[off:], []byte("\n"))
		if !ok || !bytes.HasPrefix(line, []byte("X-")) {
			return off
		}
		off += len(line) + 1
	}
}
