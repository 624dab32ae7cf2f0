package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alt-platform/orchestration/internal/run"
)

func TestBuiltinBuildkitReadsTheCLIVersion(t *testing.T) {
	for _, c := range []struct {
		line, version string
		builtin       bool
	}{
		{"Docker version 20.10.24+dfsg1, build 297e128\n", "20.10.24+dfsg1", true},
		{"Docker version 18.09.1, build 4c52b90", "18.09.1", true},
		{"Docker version 18.06.3-ce, build d7080c1", "18.06.3-ce", false},
		{"Docker version 23.0.0, build e92dd87", "23.0.0", false},
		{"Docker version 28.2.2, build e6534b4", "28.2.2", false},
		{"podman version 4.3.1", "", false},
		{"Docker version unknown", "", false},
	} {
		v, ok := builtinBuildkit(c.line)
		if ok != c.builtin || (c.version != "" && v != c.version) {
			t.Errorf("builtinBuildkit(%q) = %q, %v; want %q, %v", c.line, v, ok, c.version, c.builtin)
		}
	}
}

// The first docker on PATH without BuildKit built in (a newer CLI) is
// passed over for the next one that has it, as with Debian's docker.io
// under /usr/bin behind Docker's own CLI in /usr/local/bin.
func TestBuiltinBuildkitCLIPassesOverANewerCLI(t *testing.T) {
	root := t.TempDir()
	cli := func(dir, version string) string {
		d := filepath.Join(root, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, "docker")
		script := "#!/bin/sh\necho 'Docker version " + version + ", build 0'\n"
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cli("new", "28.2.2")
	old := cli("old", "20.10.24+dfsg1")
	path := strings.Join([]string{filepath.Join(root, "none"), filepath.Join(root, "new"), filepath.Join(root, "old")}, ":")
	got, v := builtinBuildkitCLI(context.Background(), &run.Runner{}, path)
	if got != old || v != "20.10.24+dfsg1" {
		t.Fatalf("builtinBuildkitCLI = %q %q, want %q 20.10.24+dfsg1", got, v, old)
	}
	if got, _ := builtinBuildkitCLI(context.Background(), &run.Runner{}, filepath.Join(root, "new")); got != "" {
		t.Fatalf("a 28.2.2 CLI alone was taken for BuildKit built in: %q", got)
	}
}
