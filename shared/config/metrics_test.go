package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestMetricsOffByDefaultAndLoopbackOnly(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Listen("fetchd") != "" || c.Metrics.Listen("deliverd") != "" {
		t.Fatal("metrics on by default")
	}
	c, err = Load(write(t, good+"\n[metrics]\nfetchd = \"127.0.0.1:9701\"\ndeliverd = \"[::1]:9703\"\nrewrited = \"localhost:9702\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Listen("deliverd") != "[::1]:9703" {
		t.Fatalf("%+v", c.Metrics)
	}
	head := good + "\n[metrics]\n"
	line := strings.Count(head, "\n") // of the key after the header
	path := write(t, head+"fetchd = \"0.0.0.0:9701\"\nrewrited = \":9702\"\ndeliverd = \"127.0.0.1:9701\"\n")
	_, err = Load(path)
	if err == nil {
		t.Fatal("remote metrics accepted without allow_remote")
	}
	for _, want := range []string{
		fmt.Sprintf(`:%d: metrics.fetchd: "0.0.0.0:9701" is reachable from other machines`, line+1),
		fmt.Sprintf(`:%d: metrics.rewrited: ":9702" is reachable`, line+2),
		fmt.Sprintf(`:%d: metrics.deliverd: port 9701 is also fetchd's`, line+3),
	} {
		if !strings.Contains(err.Error(), path+want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	if _, err := Load(write(t, good+"\n[metrics]\nallow_remote = true\nfetchd = \"0.0.0.0:9701\"\n")); err != nil {
		t.Fatalf("allow_remote: %v", err)
	}
	if _, err := Load(write(t, good+"\n[metrics]\nfetchd = \"9701\"\n")); err == nil || !strings.Contains(err.Error(), "is not host:port") {
		t.Fatalf("bad address: %v", err)
	}
}
