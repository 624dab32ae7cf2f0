package standin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alt-platform/orchestration/internal/contract"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/ui"
)

// Banner is said wherever a stand-in tree is used as ALT_SRC.
const Banner = "stand-in sources: no Alt code runs"

// Program compiles the stand-in program for the host's architecture,
// static (CGO_ENABLED=0), into out.
func Program(ctx context.Context, r *run.Runner, repo, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	rr := *r
	rr.Dir = repo
	rr.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	return rr.Run(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./internal/standin/cmd/standin")
}

// TreeOptions change a generated tree.
type TreeOptions struct {
	// Crash are releases whose stand-in is told to crash (CrashEnv baked
	// into its image), for the diagnosis test.
	Crash []string
}

// WriteTree writes, at dir, a tree laid out like Alt's sources at the
// contract's pinned commit: every first-party build context and
// Dockerfile, each Dockerfile building FROM scratch around the stand-in
// program (bin, compiled by Program) and the service's config. A file
// Marker at the root says what the tree is. Files of an earlier tree are
// replaced; nothing else in dir is touched.
func WriteTree(repo, dir, bin string, opt TreeOptions) (*contract.Contract, error) {
	c, err := contract.Load(repo)
	if err != nil {
		return nil, err
	}
	for _, r := range opt.Crash {
		if c.Service(r) == nil {
			return nil, fmt.Errorf("stand-ins: crash %q: no such release in %s", r, contract.File)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, s := range c.Services {
		if err := writeContext(dir, bin, s, slices.Contains(opt.Crash, s.Release)); err != nil {
			return nil, fmt.Errorf("stand-in for %s: %w", s.Release, err)
		}
	}
	marker := fmt.Sprintf("%s\nlayout of %s at commit %s (%s)\ncommit %s\n", Banner, c.Alt.Repository, c.Alt.Commit, contract.File, c.Alt.Commit)
	if len(opt.Crash) > 0 {
		marker += "told to crash: " + strings.Join(opt.Crash, ", ") + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, Marker), []byte(marker), 0o644); err != nil {
		return nil, err
	}
	// The third-party stand-ins are built from the same program.
	if err := copyFile(bin, TreeProgram(dir), 0o755); err != nil {
		return nil, err
	}
	return c, nil
}

func writeContext(dir, bin string, s contract.Service, crash bool) error {
	ctxDir := filepath.Join(dir, s.Context)
	own := filepath.Join(ctxDir, "standin")
	if err := os.MkdirAll(own, 0o755); err != nil {
		return err
	}
	if err := copyFile(bin, filepath.Join(own, "standin"), 0o755); err != nil {
		return err
	}
	cfg, err := json.MarshalIndent(FirstParty(s), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(own, "config.json"), append(cfg, '\n'), 0o644); err != nil {
		return err
	}
	df := filepath.Join(ctxDir, s.Dockerfile)
	if err := os.MkdirAll(filepath.Dir(df), 0o755); err != nil {
		return err
	}
	return os.WriteFile(df, []byte(FirstPartyDockerfile(s, crash)), 0o644)
}

// FirstPartyDockerfile is the stand-in Dockerfile of one service. No
// `# syntax=` line: BuildKit would fetch that frontend from Docker Hub.
func FirstPartyDockerfile(s contract.Service, crash bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Stand-in for %s (%s): %s.\n", s.Release, s.Image, Banner)
	fmt.Fprintf(&b, "# Generated from %s by `mage kind:standins`; it behaves as the contract says\n", contract.File)
	b.WriteString("# (required environment, ports, health paths) and echoes every request as JSON.\n")
	b.WriteString("FROM scratch\n")
	for _, a := range s.BuildArgs {
		fmt.Fprintf(&b, "ARG %s\n", a.Name)
	}
	b.WriteString("COPY standin/standin /standin/bin/standin\n")
	b.WriteString("COPY standin/config.json " + ConfigPath + "\n")
	for _, n := range Binaries(s) {
		p := n
		if !strings.HasPrefix(p, "/") {
			p = "/usr/local/bin/" + p
		}
		fmt.Fprintf(&b, "COPY standin/standin %s\n", p)
	}
	b.WriteString("ENV PATH=/usr/local/bin:/standin/bin\n")
	if crash {
		fmt.Fprintf(&b, "ENV %s=1\n", CrashEnv)
	}
	b.WriteString("USER 65532:65532\n")
	b.WriteString(`ENTRYPOINT ["/standin/bin/standin"]` + "\n")
	return b.String()
}

// IsTree reports whether dir is a stand-in tree, and its marker's text.
func IsTree(dir string) (bool, string) {
	b, err := os.ReadFile(filepath.Join(dir, Marker))
	if err != nil {
		return false, ""
	}
	return true, string(b)
}

// TreeCommit is the Alt commit whose layout a stand-in tree copies.
func TreeCommit(marker string) string {
	for _, l := range strings.Split(marker, "\n") {
		if c, ok := strings.CutPrefix(l, "commit "); ok {
			return strings.TrimSpace(c)
		}
	}
	return ""
}

// CommitTree makes the tree a git repository with one commit of its
// files (Skaffold's gitCommit tag policy tags from it). The commit's
// author and dates are fixed, so the same tree gets the same commit, the
// same image tags, and a second run changes nothing.
func CommitTree(ctx context.Context, r *run.Runner, dir string) (string, error) {
	rr := *r
	rr.Dir = dir
	rr.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=alt-platform stand-ins", "GIT_AUTHOR_EMAIL=standins@alt-platform.invalid",
		"GIT_COMMITTER_NAME=alt-platform stand-ins", "GIT_COMMITTER_EMAIL=standins@alt-platform.invalid",
		"GIT_AUTHOR_DATE=2025-09-28T00:00:00Z", "GIT_COMMITTER_DATE=2025-09-28T00:00:00Z")
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		if err := rr.Run(ctx, "git", "init", "--quiet", "--initial-branch=standins"); err != nil {
			return "", err
		}
	}
	if err := rr.Run(ctx, "git", "add", "--all"); err != nil {
		return "", err
	}
	// One commit, always the first: amend-free, parent-free, so equal
	// trees give equal commits.
	tree, err := rr.Output(ctx, "git", "write-tree")
	if err != nil {
		return "", err
	}
	commit, err := rr.Output(ctx, "git", "commit-tree", strings.TrimSpace(tree), "-m", Banner)
	if err != nil {
		return "", err
	}
	commit = strings.TrimSpace(commit)
	return commit, rr.Run(ctx, "git", "update-ref", "HEAD", commit)
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

// TreeProgram is the program a tree's images were built with.
func TreeProgram(dir string) string { return filepath.Join(dir, ".standin-program") }

// TreeDir is where Generate writes the tree, under the repository.
func TreeDir(repo string) string { return filepath.Join(repo, ".cache", "standins", "alt") }

// Generate compiles the program (from the module at repo) and writes the
// tree at dir as one git commit; it returns dir (for ALT_SRC).
func Generate(ctx context.Context, r *run.Runner, repo, dir string, opt TreeOptions) (string, error) {
	bin := filepath.Join(repo, ".cache", "standins", "bin", "standin")
	step := ui.Start("stand-in program (CGO_ENABLED=0 go build ./internal/standin/cmd/standin)")
	if err := step.End(Program(ctx, r, repo, bin)); err != nil {
		return "", err
	}
	step = ui.Start("stand-in sources in %s (the layout of Alt at the pinned commit, from %s)", dir, contract.File)
	c, err := WriteTree(repo, dir, bin, opt)
	if err == nil {
		_, err = CommitTree(ctx, r, dir)
	}
	if err := step.End(err); err != nil {
		return "", err
	}
	ui.Info("%d services; told to crash: %s", len(c.Services), orNone(opt.Crash))
	return dir, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
