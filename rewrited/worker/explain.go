package worker

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Explain prints, for one spool file, how rewrited would route it: which
// header produced which recipient, which rule dropped or rewrote which
// address, and where the file would go. It changes nothing; the filter
// command is run only if runFilter is set.
func (w *Worker) Explain(ctx context.Context, path string, runFilter bool, out io.Writer) error {
	p, err := w.makePlan(ctx, path, runFilter)
	if err != nil {
		return err
	}
	p.close()
	fmt.Fprintf(out, "file: %s\n", path)
	if p.old.HasSender || len(p.old.Receivers) > 0 || p.old.Failed != "" {
		fmt.Fprintf(out, "  old envelope lines at the top are replaced (sender <%s>, %d receivers, failed %q)\n", p.old.Sender, len(p.old.Receivers), p.old.Failed)
	}
	for _, line := range p.trace {
		fmt.Fprintf(out, "  %s\n", line)
	}
	if w.Filter.Command != nil && !runFilter {
		fmt.Fprintf(out, "  filter command %s not run (use -filter to run it)\n", strings.Join(w.Filter.Command.Argv, " "))
	}
	fmt.Fprintf(out, "outcome: %s\n", p.destination())
	return nil
}
