// Command mksyso writes the message table's COFF objects,
// msgtable_windows_<arch>.syso, into the current folder (run by go
// generate in shared/service/msgtable).
package main

import (
	"fmt"
	"os"

	"example.org/popspool/shared/service/msgtable"
)

func main() {
	for _, arch := range msgtable.Arches {
		obj, err := msgtable.Object(arch, msgtable.Table())
		if err == nil {
			err = os.WriteFile("msgtable_windows_"+arch+".syso", obj, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mksyso:", err)
			os.Exit(1)
		}
	}
}
