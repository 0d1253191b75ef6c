package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
)

// TestMetricsCountRealWork runs the samples through the three daemons and
// reads, over HTTP from each daemon's own endpoint, the bytes and the time
// of the work it did: fetching (each message and the whole poll), routing
// and delivering.
func TestMetricsCountRealWork(t *testing.T) {
	f, err := harness.New(t.TempDir(), bins, harness.Options{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	want := sampleBytes(t, f)
	startAll(t, f)
	waitDelivered(t, f, len(want), 60*time.Second)
	checks := map[string][]string{
		"fetchd": {
			`popspool_message_bytes_total{daemon="fetchd",stage="fetched"}`,
			`popspool_event_duration_seconds_sum{daemon="fetchd",event="2002"}`,
			`popspool_event_duration_seconds_count{daemon="fetchd",event="2002"}`,
			`popspool_event_duration_seconds_sum{daemon="fetchd",event="2001"}`,
			`popspool_event_duration_seconds_count{daemon="fetchd",event="2001"}`,
		},
		"rewrited": {
			`popspool_message_bytes_total{daemon="rewrited",stage="routed"}`,
			`popspool_event_duration_seconds_sum{daemon="rewrited",event="3001"}`,
			`popspool_event_duration_seconds_count{daemon="rewrited",event="3001"}`,
		},
		"deliverd": {
			`popspool_message_bytes_total{daemon="deliverd",stage="delivered"}`,
			`popspool_event_duration_seconds_sum{daemon="deliverd",event="4001"}`,
			`popspool_event_duration_seconds_count{daemon="deliverd",event="4001"}`,
		},
	}
	for _, d := range harness.Daemons {
		var zero []string
		var last error
		ok := harness.WaitFor(10*time.Second, func() bool {
			samples, err := scrape(f.Metrics[d])
			last = err
			zero = zero[:0]
			for _, name := range checks[d] {
				if samples[name] <= 0 {
					zero = append(zero, name)
				}
			}
			return err == nil && len(zero) == 0
		})
		if !ok {
			t.Errorf("%s at %s: not above 0: %v (last error %v)", d, f.Metrics[d], zero, last)
		}
	}
}

// scrape reads a metrics endpoint into sample (name with labels) → value.
func scrape(addr string) (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("sample %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}
