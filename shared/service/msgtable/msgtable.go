// Package msgtable is the daemons' Event Log message file: a message-table
// resource (RT_MESSAGETABLE) built into each Windows executable, which
// "service install" registers as the EventMessageFile of the source
// popspool-<daemon>.
//
// Event Viewer shows an entry's description by looking its Event ID up in
// the source's message file and putting the entry's strings into the text
// found there. eventlog.InstallAsEventCreate registers EventCreate.exe,
// whose table covers Event IDs 1 to 1000 only, while popspool's event
// numbers are 1001 and up: every entry read "The description for Event ID
// ... cannot be found". This table gives every Event ID from Low to High
// the text "%1", the one string popspool passes, as EventCreate.exe does
// for its range. It does not depend on which events are defined, so a new
// event needs no new table; a test checks that every defined one is
// inside the range.
//
// The resource is committed as one COFF object per Windows architecture
// (msgtable_windows_<arch>.syso), which the Go linker adds to any program
// that imports this package; "go generate" writes them from Table and
// Object, and a test checks that the committed files are what they write.
package msgtable

//go:generate go run ./mksyso

import (
	"bytes"
	"encoding/binary"
)

// The range of Event IDs the table covers: 1000 (a log line without an
// event number) to the last number a four-digit daemon range can have.
const (
	Low  = 1000
	High = 4999
)

// Text is every ID's message: the entry's one insertion string, then the
// line end the message compiler puts after each message.
const Text = "%1\r\n"

// Table returns the resource's contents, a MESSAGE_RESOURCE_DATA: one
// block from Low to High, then one ANSI MESSAGE_RESOURCE_ENTRY per ID
// (length, flags 0, Text, NUL, padded to four bytes).
func Table() []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	const header = 4 + 12 // NumberOfBlocks, one MESSAGE_RESOURCE_BLOCK
	b.Write(le.AppendUint32(nil, 1))
	b.Write(le.AppendUint32(nil, Low))
	b.Write(le.AppendUint32(nil, High))
	b.Write(le.AppendUint32(nil, header))
	entry := entry(Text)
	for id := Low; id <= High; id++ {
		b.Write(entry)
	}
	return b.Bytes()
}

// entry is one ANSI MESSAGE_RESOURCE_ENTRY holding text.
func entry(text string) []byte {
	n := align(4+len(text)+1, 4)
	e := make([]byte, n)
	binary.LittleEndian.PutUint16(e[0:], uint16(n))
	binary.LittleEndian.PutUint16(e[2:], 0) // ANSI
	copy(e[4:], text)
	return e
}

func align(n, to int) int { return (n + to - 1) / to * to }
