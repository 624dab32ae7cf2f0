package stack

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/alt-platform/orchestration/internal/tools"
)

// The embedded schema is the one Skaffold publishes in its module at the
// pinned version, byte for byte: bumping Skaffold fails here until the
// copy is refreshed (the message says how).
func TestSchemaIsSkaffolds(t *testing.T) {
	sk, err := tools.Lookup("skaffold")
	if err != nil {
		t.Fatal(err)
	}
	mod := "github.com/GoogleContainerTools/skaffold/v2@" + sk.Version
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", mod, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s: %q %v", mod, out, err)
	}
	theirs, err := os.ReadFile(filepath.Join(m.Dir, SchemaFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(theirs, SchemaJSON) {
		t.Errorf("internal/stack/skaffold-v4beta13.json is not %s of %s; copy it from %s", SchemaFile, mod, filepath.Join(m.Dir, SchemaFile))
	}

}
