package check

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/alt-platform/orchestration/internal/tools"
)

// TestShellcheck breaks a copy of scripts/ and wants ci's shellcheck check
// to fail naming the file and the line; the unbroken copy passes.
func TestShellcheck(t *testing.T) {
	bin, err := exec.LookPath(tools.Shellcheck.Bin)
	if err != nil {
		t.Skipf("shellcheck is not installed (ci's static stage installs Debian's %s)", tools.Shellcheck.Package)
	}
	cases := []struct {
		name  string
		edits []edit
		want  []string
	}{
		{name: "unbroken"},
		{name: "a variable left unquoted", edits: []edit{{"scripts/foundation-present", `kube --namespace="$ns" get`, `kube --namespace=$ns get`}},
			want: []string{"scripts/foundation-present:10: column 19:", "Double quote to prevent globbing and word splitting. [SC2086]"}},
		{name: "bash in a POSIX sh script", edits: []edit{{"scripts/lib/kube.sh", `if [ "$#" -lt "$min" ]; then`, `if [[ "$#" -lt "$min" ]]; then`}},
			want: []string{"scripts/lib/kube.sh:", "[[ ]] is undefined. [SC3010]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := platform(t, c.edits...)
			wantErr(t, Shellcheck(context.Background(), nil, repo, bin), c.want...)
		})
	}
}

// TestActionlint breaks a copy of the workflows and wants ci's actionlint
// check to fail naming the file and the line; the unbroken copy passes.
func TestActionlint(t *testing.T) {
	bin, _ := tool(t, "actionlint")
	shellcheck, _ := exec.LookPath(tools.Shellcheck.Bin)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	const ci = ".github/workflows/ci.yaml"
	cases := []struct {
		name  string
		edits []edit
		want  []string
	}{
		{name: "unbroken"},
		{name: "a misspelt key", edits: []edit{{ci, "    runs-on: ubuntu-24.04\n", "    run-on: ubuntu-24.04\n"}},
			want: []string{ci + ":11: column 5:", `unexpected key "run-on" for "job" section`}},
		{name: "an expression naming no step", edits: []edit{{ci, "        run: go run mage.go ci\n", "        run: go run mage.go ci ${{ steps.build.outputs.target }}\n"}},
			want: []string{ci + ":24:", `property "build" is not defined in object type`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := t.TempDir()
			if err := os.CopyFS(filepath.Join(repo, WorkflowsDir), os.DirFS(filepath.Join(root, WorkflowsDir))); err != nil {
				t.Fatal(err)
			}
			applyEdits(t, repo, c.edits)
			wantErr(t, Actionlint(context.Background(), nil, repo, bin, shellcheck), c.want...)
		})
	}
}
