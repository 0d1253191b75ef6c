package harness_test

import (
	"os"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/smtpsink"
	"example.org/popspool/spooltest/testcert"
)

var bins = harness.Binaries{Prefix: "popspool-harness-bin-"}

func TestMain(m *testing.M) {
	code := m.Run()
	bins.Remove()
	os.Exit(code)
}

// TestTLSBothSides: with Options.TLS and StartTLS the generated config
// has fetchd fetch over implicit TLS and STLS from the flow's own POP3
// server and deliverd deliver with STARTTLS required, each verifying the
// test certificate from its ca_file; every message arrives, over TLS.
func TestTLSBothSides(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemons")
	}
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			cert, err := testcert.Write(dir)
			if err != nil {
				t.Fatal(err)
			}
			sink, err := smtpsink.StartTLS(cert.TLSConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			f, err := harness.New(dir, bins.Dir(t), harness.Options{
				Target: "smtp://" + sink.Addr, TLS: mode, ServerTLS: cert.TLSConfig(), CAFile: cert.CertFile,
				StartTLS: "required", DeliverCAFile: cert.CertFile,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want, err := harness.Generate(f.Box, 5, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range harness.Daemons {
				if err := f.Start(d); err != nil {
					t.Fatal(err)
				}
			}
			if !harness.WaitFor(30*time.Second, func() bool { return sink.Count() >= len(want) && f.Settled() }) {
				t.Fatalf("not delivered: sink has %d of %d, spool %v", sink.Count(), len(want), f.SpoolFiles())
			}
			if n := sink.TLSMessages(); n != len(want) {
				t.Fatalf("%d of %d messages came over TLS", n, sink.Count())
			}
			if st := f.Server.Stats(); st.Left != 0 || st.Logins == 0 {
				t.Fatalf("POP3 server: %+v", st)
			}
		})
	}
}
