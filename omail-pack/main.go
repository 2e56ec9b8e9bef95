// omail-pack: see docs/omail-pack.md. Not built yet: it says so and
// exits with a temporary failure, so nothing that calls it loses mail.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "omail-pack: not implemented yet")
	os.Exit(111)
}
