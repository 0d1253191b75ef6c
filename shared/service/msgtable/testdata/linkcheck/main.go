// Command linkcheck is built for Windows by msgtable's tests: it links
// package service, as the daemons do, to show that the message table
// reaches the executable.
package main

import _ "example.org/popspool/shared/service"

func main() {}
