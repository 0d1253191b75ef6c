package admin

import (
	"bytes"
	"strings"
	"testing"

	"example.org/popspool/shared/config"
)

// A copy rewrited's duplicate filter kept in duplicates/ is listed by
// queue and delivered anyway by requeue: to pickup/, envelope and all.
func TestRequeueFromDuplicates(t *testing.T) {
	root := actSpool(t)
	id := actPut(t, root, "duplicates")
	var list bytes.Buffer
	if err := Queue(&config.Config{Spool: root}, Filter{Folders: []string{"duplicates"}}, false, &list); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list.String(), id) {
		t.Fatalf("queue -folder duplicates does not list %s:\n%s", id, list.String())
	}
	a, out := actOpen(t, root)
	if n, err := a.Requeue([]string{id}); err != nil || n != 1 {
		t.Fatalf("requeued %d: %v\n%s", n, err, out)
	}
	if !actExists(root, "pickup/"+id+".eml") || actExists(root, "duplicates/"+id+".eml") {
		t.Fatalf("after requeue:\n%s", out)
	}
}
