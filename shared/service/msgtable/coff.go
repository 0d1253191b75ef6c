package msgtable

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Arches are the Windows architectures a .syso is committed for.
var Arches = []string{"amd64", "386", "arm64"}

// machine is each architecture's COFF Machine and the relocation type of
// an image-relative 32-bit address (ADDR32NB, DIR32NB for 386).
var machine = map[string]struct{ id, reloc uint16 }{
	"amd64": {0x8664, 0x0003},
	"386":   {0x014c, 0x0007},
	"arm64": {0xaa64, 0x0002},
}

// The resource's place in the tree: type RT_MESSAGETABLE, name 1,
// language English (United States), as the message compiler writes it.
const (
	rtMessageTable = 11
	resourceName   = 1
	langEnUS       = 0x0409
)

// Layout of the .rsrc section: three directories of one entry each (type,
// name, language), the data entry, then the data.
const (
	dirSize       = 16 + 8
	dataEntryOff  = 3 * dirSize
	dataOff       = dataEntryOff + 16
	fileHeader    = 20
	sectionHeader = 40
	relocSize     = 10
	symbolSize    = 18
)

// Object returns a COFF object file for arch holding one .rsrc section
// with data as the message table, for the Go linker to put in a
// Windows executable. The data entry's address is relocated against the
// section's symbol, as windres writes it.
func Object(arch string, data []byte) ([]byte, error) {
	m, ok := machine[arch]
	if !ok {
		return nil, fmt.Errorf("msgtable: no COFF machine for %q", arch)
	}
	sect := rsrc(data)
	relocs := fileHeader + sectionHeader + len(sect)
	symbols := relocs + relocSize
	var b bytes.Buffer
	put := func(v ...any) {
		for _, x := range v {
			binary.Write(&b, binary.LittleEndian, x) // bytes.Buffer does not fail
		}
	}
	// IMAGE_FILE_HEADER: machine, one section, no time stamp, symbol
	// table, one symbol, no optional header, line numbers stripped.
	put(m.id, uint16(1), uint32(0), uint32(symbols), uint32(1), uint16(0), uint16(0x0004))
	// IMAGE_SECTION_HEADER of .rsrc: initialized data, 4-byte aligned,
	// read and write (what windres writes).
	put([8]byte{'.', 'r', 's', 'r', 'c'}, uint32(0), uint32(0), uint32(len(sect)),
		uint32(fileHeader+sectionHeader), uint32(relocs), uint32(0), uint16(1), uint16(0), uint32(0xc0300040))
	b.Write(sect)
	// The relocation of the data entry's OffsetToData.
	put(uint32(dataEntryOff), uint32(0), m.reloc)
	// The section symbol: .rsrc, value 0, section 1, static.
	put([8]byte{'.', 'r', 's', 'r', 'c'}, uint32(0), int16(1), uint16(0), uint8(3), uint8(0))
	put(uint32(4)) // an empty string table
	return b.Bytes(), nil
}

// rsrc is the .rsrc section's contents for data, padded to eight bytes.
func rsrc(data []byte) []byte {
	var b bytes.Buffer
	put := func(v ...uint32) {
		for _, x := range v {
			b.Write(binary.LittleEndian.AppendUint32(nil, x))
		}
	}
	const subdir = 0x80000000
	dir := func(id, to uint32) {
		// IMAGE_RESOURCE_DIRECTORY with one ID entry, then the entry.
		put(0, 0, 0, 1<<16)
		put(id, to)
	}
	dir(rtMessageTable, subdir|dirSize)
	dir(resourceName, subdir|2*dirSize)
	dir(langEnUS, dataEntryOff)
	// IMAGE_RESOURCE_DATA_ENTRY: the data's address (relocated), size,
	// code page, reserved.
	put(dataOff, uint32(len(data)), 0, 0)
	b.Write(data)
	b.Write(make([]byte, align(b.Len(), 8)-b.Len()))
	return b.Bytes()
}
