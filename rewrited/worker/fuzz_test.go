package worker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/rewrited/filter"
	"example.org/popspool/shared/config"
)

// FuzzPlan feeds arbitrary files to the routing and header code: it must
// never panic, and it must either route to valid local addresses or give a
// reason.
func FuzzPlan(f *testing.F) {
	entries, _ := os.ReadDir(corpus)
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(corpus, e.Name())); err == nil && len(b) < 64<<10 {
			f.Add(b)
		}
	}
	f.Add([]byte("X-Popspool-Account: box\r\nDelivered-To: a@contoso.local\r\n\r\nx"))
	cfg := &config.Config{Account: []config.Account{{Name: "box", Routing: config.Routing{
		LocalDomains: []string{"contoso.local"}, EnvelopeHeaders: config.DefaultEnvelopeHeaders,
		Aliases: map[string]string{"@old.contoso.local": "postmaster@contoso.local"}}}}}
	w := &Worker{Cfg: cfg, Log: zerolog.Nop(), Filter: filter.New(config.Filter{MaxHops: 3})}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "m.eml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := w.makePlan(context.Background(), path, false)
		if err != nil {
			t.Fatal(err)
		}
		if p.reject != nil {
			if p.reject.reason == "" || p.reject.ev == 0 {
				t.Fatalf("rejection without reason: %+v", p.reject)
			}
			return
		}
		if len(p.env.Receivers) == 0 {
			t.Fatal("routed without recipients")
		}
		for _, r := range p.env.Receivers {
			if !config.ValidAddress(r) || !strings.HasSuffix(strings.ToLower(r), "@contoso.local") {
				t.Fatalf("recipient %q is not a local address", r)
			}
		}
	})
}
