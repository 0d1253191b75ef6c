// Package samples holds the sample messages for the demo and the end-to-end
// tests: varied, partly hostile mail in exact wire form (CRLF, except one
// message with bare LF), embedded so tests need no files of their own.
// gen writes data/; regenerate with `go generate`.
package samples

//go:generate go run ./gen

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed data/*.eml
var data embed.FS

// Names returns the file names of the samples ("01-plain-ascii.eml", …),
// sorted.
func Names() []string {
	ents, err := fs.ReadDir(data, "data")
	if err != nil {
		panic(fmt.Sprintf("samples: embedded data unreadable: %v", err)) // broken build
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// Read returns the exact bytes of the sample called name.
func Read(name string) ([]byte, error) {
	b, err := data.ReadFile("data/" + name)
	if err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	return b, nil
}

// WriteTo writes every sample into dir (created if missing) and returns the
// file names written. Each file appears complete or not at all: it is
// written under a temporary name and renamed, so a watcher or a POP3
// server snapshotting dir never sees half a message.
func WriteTo(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	names := Names()
	for _, name := range names {
		if err := writeOne(dir, name); err != nil {
			return nil, err
		}
	}
	return names, nil
}

func writeOne(dir, name string) error {
	b, err := Read(name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".sample-*.tmp")
	if err != nil {
		return fmt.Errorf("samples: write %s: %w", name, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := firstErr(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name()) // best effort; the original error matters
		return fmt.Errorf("samples: write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("samples: write %s: %w", name, err)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
