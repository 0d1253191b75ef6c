package spool

import (
	"testing"
	"time"
)

func TestNewIDSortableAndValid(t *testing.T) {
	prev := ""
	for i := 0; i < 10000; i++ {
		id := NewID()
		if !ValidID(id) {
			t.Fatalf("invalid id %q", id)
		}
		if id <= prev {
			t.Fatalf("id %q not after %q", id, prev)
		}
		prev = id
	}
	if d := time.Since(IDTime(prev)); d < 0 || d > time.Minute {
		t.Fatalf("IDTime off by %v", d)
	}
}

func TestIDOf(t *testing.T) {
	id := NewID()
	good := []string{id + ".eml", id + "-1.eml"}
	bad := []string{"garbage.txt", id, id + ".part", "../" + id + ".eml", "x" + id[1:] + ".eml", ".eml"}
	for _, n := range good {
		if got, ok := IDOf(n); !ok || got != id {
			t.Errorf("IDOf(%q) = %q, %v", n, got, ok)
		}
	}
	for _, n := range bad {
		if _, ok := IDOf(n); ok {
			t.Errorf("IDOf(%q) accepted", n)
		}
	}
}
