package fetch

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
)

// TestKeepDaysAcrossRestart: the time each message was fetched is kept in
// the UIDL journal file, so after a restart keep_days deletes exactly the
// messages fetched longer ago and no other, and fetches nothing again
// (issue 15.7). The journal is aged by hand, as the days would.
func TestKeepDaysAcrossRestart(t *testing.T) {
	r := newRig(t)
	a := &r.cfg.Account[0]
	a.Keep, a.KeepDays = true, 2
	st, err := r.poll(t)
	n := len(r.want)
	if err != nil || st.Fetched != n || n < 2 {
		t.Fatalf("first poll %+v %v (%d samples)", st, err, n)
	}
	r.f.Close()
	path := filepath.Join(r.s.Dir(spool.State), a.Name+".uidl")
	recs, err := readRecords(path, &r.f.Log)
	if err != nil {
		t.Fatal(err)
	}
	old := strconv.FormatInt(time.Now().Add(-72*time.Hour).Unix(), 10)
	aged := 0
	for _, rec := range recs {
		if rec[0] == "F" && aged < n/2 {
			rec[3] = old
			aged++
		}
	}
	if err := journal.RewriteFS(path, recs, spool.OS{}); err != nil {
		t.Fatal(err)
	}
	r.reopen(t)
	st, err = r.poll(t)
	if err != nil || st.Deleted != aged || st.Fetched != 0 {
		t.Fatalf("after the restart: %+v %v; want %d deleted (fetched 3 days ago), none fetched", st, err, aged)
	}
	if left := r.srv.Stats().Left; left != n-aged {
		t.Fatalf("the server holds %d, want %d", left, n-aged)
	}
	r.reopen(t)
	if st, err = r.poll(t); err != nil || st.Deleted != 0 || st.Fetched != 0 {
		t.Fatalf("a second restart: %+v %v; want nothing deleted or fetched", st, err)
	}
	recs, _ = readRecords(path, &r.f.Log)
	for _, rec := range recs {
		if sec, _ := strconv.ParseInt(rec[3], 10, 64); rec[0] == "F" && time.Since(time.Unix(sec, 0)) > time.Hour {
			t.Fatalf("the journal kept a record aged %v after deleting it, or lost an age: %q", time.Since(time.Unix(sec, 0)), rec)
		}
	}
}
