package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/status"
)

func TestHandlerServesPrometheusText(t *testing.T) {
	now := time.Now()
	f := status.File{Daemon: "deliverd", Version: "1.0", Started: now,
		Events: map[int]*status.Count{
			4001: {Level: "info", N: 7, Bytes: 7000},
			4002: {Level: "warn", N: 2},
			4007: {Level: "error", N: 3},
		},
		Folders: map[string]status.Folder{"pickup": {Files: 4, Bytes: 400, Oldest: now.Add(-time.Minute)}, "deferred": {}},
	}
	srv := httptest.NewServer(Handler(func() status.File { return f }))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	for _, want := range []string{
		`popspool_up{daemon="deliverd",version="1.0"} 1`,
		`popspool_events_total{daemon="deliverd",event="4007",level="error"} 3`,
		`popspool_messages_total{daemon="deliverd",stage="delivered"} 7`,
		`popspool_messages_total{daemon="deliverd",stage="deferred"} 2`,
		`popspool_messages_total{daemon="deliverd",stage="fetched"} 0`,
		`popspool_message_bytes_total{daemon="deliverd",stage="delivered"} 7000`,
		`popspool_folder_files{folder="pickup"} 4`,
		`popspool_folder_oldest_seconds{folder="deferred"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	// Every sample line belongs to a declared family.
	declared := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(l, "# TYPE ") {
			declared[strings.Fields(l)[2]] = true
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		name := strings.TrimSuffix(strings.TrimSuffix(l[:strings.IndexAny(l, "{ ")], "_sum"), "_count")
		if !declared[name] {
			t.Errorf("sample without # TYPE: %s", l)
		}
	}
	if r, _ := http.Post(srv.URL+"/metrics", "text/plain", nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.StatusCode)
	}
}

// Every event that moves a message to failed/ or badmail/ counts in its
// stage; 1018 only where it is that move (rewrited), not beside the 4021
// of deliverd.
func TestFailureEventsEndAStage(t *testing.T) {
	for _, tc := range []struct {
		daemon string
		ids    []int
		stage  string
	}{
		{"rewrited", []int{1018, 3002, 3003, 3004, 3006, 3007, 3009, 3010, 3011, 3012, 3016, 3017}, "failed"},
		{"deliverd", []int{1018, 4003, 4004, 4008, 4020, 4021, 4022, 4027}, "badmail"},
	} {
		f := status.File{Daemon: tc.daemon, Events: map[int]*status.Count{}}
		for _, id := range tc.ids {
			f.Events[id] = &status.Count{Level: "warn", N: 1, Bytes: 10}
		}
		var b strings.Builder
		Write(&b, f)
		n := len(tc.ids)
		if tc.daemon == "deliverd" {
			n-- // the 1018
		}
		for _, want := range []string{
			fmt.Sprintf("popspool_messages_total{daemon=%q,stage=%q} %d\n", tc.daemon, tc.stage, n),
			fmt.Sprintf("popspool_message_bytes_total{daemon=%q,stage=%q} %d\n", tc.daemon, tc.stage, 10*n),
		} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s: missing %s", tc.daemon, want)
			}
		}
	}
}
