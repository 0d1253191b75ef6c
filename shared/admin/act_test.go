package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// testSpool makes a spool with the folders and returns its root.
func actSpool(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "spool")
	for _, f := range spool.Folders {
		if err := os.MkdirAll(filepath.Join(root, f), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// put writes a message file into folder and returns its id.
func actPut(t *testing.T, root, folder string) string {
	t.Helper()
	id := spool.NewID()
	if err := os.WriteFile(filepath.Join(root, folder, id+".eml"), []byte("X-Sender: <a@b>\r\n\r\nbody "+id+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}

func actExists(root, rel string) bool {
	_, err := os.Stat(filepath.Join(root, rel))
	return err == nil
}

// actions reads status/actions.log: one JSON object per action.
func actRecords(t *testing.T, root string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "status", "actions.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func actOpen(t *testing.T, root string) (*Actions, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	a, err := Open(root, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, &out
}

func TestRequeueSendsEachFolderWhereItGoesOn(t *testing.T) {
	root := actSpool(t)
	def, bad, fail, pick := actPut(t, root, "deferred"), actPut(t, root, "badmail"), actPut(t, root, "failed"), actPut(t, root, "pickup")
	a, out := actOpen(t, root)
	n, err := a.Requeue([]string{def, "badmail/" + bad + ".eml", fail, pick})
	if err != nil || n != 3 {
		t.Fatalf("requeued %d: %v\n%s", n, err, out)
	}
	for _, want := range []string{"pickup/" + def + ".eml", "pickup/" + bad + ".eml", "incoming/" + fail + ".eml", "pickup/" + pick + ".eml"} {
		if !actExists(root, want) {
			t.Errorf("no %s after requeue\n%s", want, out)
		}
	}
	if !strings.Contains(out.String(), pick+": in pickup/ already") {
		t.Errorf("pickup message not reported:\n%s", out)
	}
	recs := actRecords(t, root)
	if len(recs) != 3 || recs[0]["event"] != float64(event.AdminMoved) || recs[0]["from"] != "deferred/"+def+".eml" ||
		recs[0]["to"] != "pickup/"+def+".eml" || recs[0]["by"] == "" {
		t.Fatalf("records %v", recs)
	}
}

// A name taken in the destination is never overwritten: the copy is
// stored beside it, as the daemons do.
func TestRequeueNeverOverwrites(t *testing.T) {
	root := actSpool(t)
	id := actPut(t, root, "deferred")
	os.WriteFile(filepath.Join(root, "pickup", id+".eml"), []byte("the other copy"), 0o600)
	a, out := actOpen(t, root)
	if _, err := a.Requeue([]string{"deferred/" + id + ".eml"}); err != nil {
		t.Fatal(err)
	}
	other, _ := os.ReadFile(filepath.Join(root, "pickup", id+".eml"))
	if string(other) != "the other copy" || !actExists(root, "pickup/"+id+"-1.eml") {
		t.Fatalf("overwritten or lost:\n%s", out)
	}
}

func TestRequeueFolder(t *testing.T) {
	root := actSpool(t)
	ids := []string{actPut(t, root, "deferred"), actPut(t, root, "deferred"), actPut(t, root, "deferred")}
	os.WriteFile(filepath.Join(root, "deferred", ".hold-"+spool.NewID()+".eml"), nil, 0o600)
	a, _ := actOpen(t, root)
	n, err := a.RequeueFolder("deferred", func(path string) bool { return !strings.Contains(path, ids[2]) })
	if err != nil || n != 2 || !actExists(root, "pickup/"+ids[0]+".eml") || !actExists(root, "deferred/"+ids[2]+".eml") {
		t.Fatalf("requeued %d: %v", n, err)
	}
	if _, err := a.RequeueFolder("pickup", nil); err == nil {
		t.Fatal("requeue of pickup/ accepted")
	}
}

func TestHoldAndRelease(t *testing.T) {
	root := actSpool(t)
	id := actPut(t, root, "pickup")
	a, out := actOpen(t, root)
	if n, err := a.Hold([]string{id}); n != 1 || err != nil || !actExists(root, "pickup/.hold-"+id+".eml") || actExists(root, "pickup/"+id+".eml") {
		t.Fatalf("hold: %d %v\n%s", n, err, out)
	}
	if n, _ := a.Hold([]string{id}); n != 0 || !strings.Contains(out.String(), "held already") {
		t.Fatalf("hold twice: %d\n%s", n, out)
	}
	if n, err := a.Release([]string{id}); n != 1 || err != nil || !actExists(root, "pickup/"+id+".eml") {
		t.Fatalf("release: %d %v\n%s", n, err, out)
	}
	// requeue of a held deferred message releases and requeues it
	def := actPut(t, root, "deferred")
	a.Hold([]string{def})
	if n, err := a.Requeue([]string{def}); n != 1 || err != nil || !actExists(root, "pickup/"+def+".eml") {
		t.Fatalf("requeue held: %d %v\n%s", n, err, out)
	}
}

func TestDeleteIsRecorded(t *testing.T) {
	root := actSpool(t)
	id := actPut(t, root, "badmail")
	a, out := actOpen(t, root)
	if n, err := a.Delete([]string{id}); n != 1 || err != nil || actExists(root, "badmail/"+id+".eml") {
		t.Fatalf("delete: %d %v\n%s", n, err, out)
	}
	recs := actRecords(t, root)
	if len(recs) != 1 || recs[0]["event"] != float64(event.AdminDeleted) || recs[0]["id"] != id || recs[0]["size"] == nil {
		t.Fatalf("records %v", recs)
	}
	var show bytes.Buffer // the file is gone; show still tells who deleted it
	if err := Show(&config.Config{Spool: root}, id, &show); err != nil || !strings.Contains(show.String(), "deleted by ") {
		t.Fatalf("show of a deleted message: %v\n%s", err, show.String())
	}
}

// What is not there, or is not an id, is said plainly and stops nothing.
func TestUnknownAndBadIDs(t *testing.T) {
	root := actSpool(t)
	good := actPut(t, root, "deferred")
	a, out := actOpen(t, root)
	n, err := a.Requeue([]string{"../../etc/passwd", spool.NewID(), good})
	if n != 1 || err == nil || !strings.Contains(out.String(), "is not a message id") || !strings.Contains(out.String(), "no message ") {
		t.Fatalf("%d %v\n%s", n, err, out)
	}
}

// A file a daemon claimed between locate and the rename is reported as
// taken, not as an error of the spool, and nothing is lost.
func TestTakenByADaemonMeanwhile(t *testing.T) {
	root := actSpool(t)
	id := actPut(t, root, "deferred")
	a, _ := actOpen(t, root)
	l := located{folder: "deferred", name: id + ".eml"}
	os.Rename(filepath.Join(root, "deferred", id+".eml"), filepath.Join(root, "tmp", id+".eml")) // the claim
	if err := a.move(l, id, "pickup", "requeue"); err == nil || !strings.Contains(err.Error(), "was taken by a daemon") {
		t.Fatalf("%v", err)
	}
	if !actExists(root, "tmp/"+id+".eml") {
		t.Fatal("the claimed file is gone")
	}
}

func TestRetrieveNow(t *testing.T) {
	root := actSpool(t)
	cfg := &config.Config{File: "/etc/popspool.toml", Account: []config.Account{{Name: "office"}}}
	a, out := actOpen(t, root)
	// fetchd taking the request: it removes the file
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			if os.Remove(filepath.Join(root, "control", "retrieve-now.office")) == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if taken, err := a.RetrieveNow(cfg, "office", false, 5*time.Second); !taken || err != nil {
		t.Fatalf("%v %v\n%s", taken, err, out)
	}
	<-done
	if taken, err := a.RetrieveNow(cfg, "", true, 200*time.Millisecond); taken || err != nil || !strings.Contains(out.String(), "is it running?") {
		t.Fatalf("no fetchd: %v %v\n%s", taken, err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "control", "retrieve-now")); string(b) != "all\n" {
		t.Fatalf("retrieve-now holds %q", b)
	}
	if _, err := a.RetrieveNow(cfg, "nosuch", false, 0); err == nil || !strings.Contains(err.Error(), `no account named "nosuch"`) {
		t.Fatalf("unknown account: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "control"))
	if len(entries) != 1 {
		t.Fatalf("control/ holds %d files, want the one request", len(entries))
	}
}

// A held message is still listed by queue, marked held, and shown.
func TestHeldIsListedAndShown(t *testing.T) {
	root := actSpool(t)
	id := actPut(t, root, "pickup")
	a, _ := actOpen(t, root)
	a.Hold([]string{id})
	cfg := &config.Config{Spool: root}
	entries, _, err := Entries(cfg, Filter{})
	if err != nil || len(entries) != 1 || entries[0].ID != id || !entries[0].Held || entries[0].Where != "pickup" {
		t.Fatalf("entries %+v %v", entries, err)
	}
	var table, show bytes.Buffer
	Queue(cfg, Filter{}, false, &table)
	if !strings.Contains(table.String(), id+"  pickup,held") {
		t.Fatalf("queue:\n%s", table.String())
	}
	if err := Show(cfg, id, &show); err != nil || !strings.Contains(show.String(), ".hold-"+id) ||
		!strings.Contains(show.String(), "operators' commands (status/actions.log)") ||
		!strings.Contains(show.String(), " hold by ") || !strings.Contains(show.String(), "pickup/"+id+".eml -> pickup/.hold-"+id+".eml") {
		t.Fatalf("show: %v\n%s", err, show.String())
	}
}
