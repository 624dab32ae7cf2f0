package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
)

// WorkflowsDir holds the GitHub workflows actionlint checks.
const WorkflowsDir = ".github/workflows"

// Shellcheck runs shellcheck (bin) on every file of scripts/ (the scripts
// hooks call and their library), following what they source. Each finding
// is a problem named by file and line.
func Shellcheck(ctx context.Context, r *run.Runner, repo, bin string) error {
	var files []string
	err := filepath.WalkDir(filepath.Join(repo, stack.ScriptsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return Problems{{File: stack.ScriptsDir, Msg: err.Error()}}
	}
	if len(files) == 0 {
		return nil
	}
	sort.Strings(files)
	args := append([]string{"--format=gcc", "--external-sources", "--source-path=SCRIPTDIR", "--shell=sh", "--severity=style"}, files...)
	return lintOutput(ctx, r, repo, bin, args, "shellcheck")
}

// Actionlint runs actionlint (bin) on every workflow of .github/workflows,
// with shellcheck (shellcheck; "" for none) on their run: steps. Each
// finding is a problem named by file and line.
func Actionlint(ctx context.Context, r *run.Runner, repo, bin, shellcheck string) error {
	var files []string
	for _, ext := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(repo, WorkflowsDir, ext))
		for _, p := range m {
			rel, _ := filepath.Rel(repo, p)
			files = append(files, filepath.ToSlash(rel))
		}
	}
	if len(files) == 0 {
		return nil
	}
	sort.Strings(files)
	args := append([]string{"-oneline", "-no-color", "-shellcheck=" + shellcheck, "-pyflakes="}, files...)
	return lintOutput(ctx, r, repo, bin, args, "actionlint")
}

// finding is one line of a linter's output: file:line:col: message.
var finding = regexp.MustCompile(`^([^:\s][^:]*):(\d+):(\d+): (.*)$`)

// lintOutput runs a linter in the repository and turns its findings into
// problems; a linter that fails without findings is one problem with its
// output.
func lintOutput(ctx context.Context, r *run.Runner, repo, bin string, args []string, name string) error {
	lr := run.Runner{}
	if r != nil {
		lr = *r
	}
	lr.Dir = repo
	if lr.Env == nil {
		lr.Env = os.Environ()
	}
	out, err := lr.Output(ctx, bin, args...)
	var ps Problems
	for _, l := range strings.Split(out, "\n") {
		if m := finding.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			ps = append(ps, Problem{File: m[1] + ":" + m[2], Msg: fmt.Sprintf("column %s: %s", m[3], m[4])})
		}
	}
	switch {
	case len(ps) > 0:
		return ps
	case err != nil:
		var re *run.Error
		if errors.As(err, &re) && strings.TrimSpace(re.Output) != "" {
			return fmt.Errorf("%s failed: %s", name, strings.TrimSpace(re.Output))
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
