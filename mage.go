//go:build ignore

// Zero-install entry point: `go run mage.go <target>` on a machine that has
// only Go. Mage is pinned in go.mod.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
