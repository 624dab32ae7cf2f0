//go:build ignore

// Zero-install entry point: `go run mage.go <target>` on a machine that has
// only Go. Mage is pinned in go.mod.
package main

import (
	"os"
	"path/filepath"

	"github.com/magefile/mage/mage"
)

func main() {
	// Mage names its compiled targets after the magefiles alone, in one
	// cache per user: two checkouts with the same magefiles (worktrees, a
	// clone in CI) would rebuild one binary over the other while a
	// running `ci` still executes it for its deploy passes. Each checkout
	// keeps its own, in its git-ignored .cache.
	if os.Getenv("MAGEFILE_CACHE") == "" {
		if wd, err := os.Getwd(); err == nil {
			os.Setenv("MAGEFILE_CACHE", filepath.Join(wd, ".cache", "mage"))
		}
	}
	os.Exit(mage.Main())
}
