// Package ci is the gate every change passes (`mage ci`): a static stage
// that needs no cluster, a deploy stage on a fresh sim cluster, a kind
// stage on a real kind cluster with stand-in sources (where a Docker daemon
// answers), and every test. Each check prints one line with ✓/✗ and its time; every check runs
// even when an earlier one failed; the failures are summed up at the end,
// and the outcome is written as JUnit XML (and a GitHub step summary when
// GITHUB_STEP_SUMMARY is set).
package ci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/check"
	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/report"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/sim"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
)

// Dir holds ci's reports and its deploy stage's copy of the platform,
// relative to the repository.
const Dir = ".cache/ci"

// Options are what a ci run needs.
type Options struct {
	Repo   string
	Self   string // the compiled Mage targets, run for the deploy stage
	Tools  *tools.Cache
	Runner *run.Runner
	// Summary is the GitHub step summary file ("" : none).
	Summary string
}

type gate struct {
	o     Options
	cases []report.Case
	cold  []engine.Result // the layers of the sim deploy from empty, for the timeline
}

// Run runs every stage and returns an error naming every failed check.
func Run(ctx context.Context, o Options) error {
	g, err := newGate(o)
	if err != nil {
		return err
	}
	s, graph, stackErr := stack.LoadAll(o.Repo)

	g.stage("static")
	g.cmd(ctx, "go vet ./...", "go", "vet", "./...")
	g.cmd(ctx, "go test -short ./...", "go", "test", "-short", "-count=1", "./...")
	g.add("static", "stack: Skaffold files and the Mage graph", func() error { return stackErr })
	if stackErr == nil {
		g.static(ctx, s, graph)
	}

	g.stage("deploy")
	if stackErr == nil {
		g.deploy(ctx)
	}

	g.stage("kind")
	if stackErr == nil {
		g.kindStage(ctx)
	}

	g.stage("tests")
	g.add("tests", "go test ./... (integration tests on sim clusters included)", func() error {
		r := *o.Runner
		r.Verbose = true // the test names and closing lines belong in the log
		// check.TestRepository repeats the static stage on this tree; the
		// three skaffold renders (most of its time) have just run there.
		if stackErr == nil {
			env := r.Env
			if env == nil {
				env = os.Environ()
			}
			r.Env = append(slices.Clone(env), "ALT_CHECK_NO_SKAFFOLD=1")
		}
		var out bytes.Buffer
		err := r.Stream(ctx, io.MultiWriter(ui.Writer(), &out), "go", "test", "-count=1", "-timeout=60m", "./...")
		if failed := failedTests(out.String()); err != nil && len(failed) > 0 {
			err = fmt.Errorf("%w\nfailed:\n%s", err, strings.Join(failed, "\n"))
		}
		return err
	})
	return g.finish(graph, s)
}

// newGate keeps a copy of the running targets binary (o.Self) in the
// checkout's .cache/ci for the deploy passes: the file Mage ran may be
// rebuilt by another run of `go run mage.go` while this one lasts.
func newGate(o Options) (*gate, error) {
	b, err := os.ReadFile(o.Self)
	if err != nil {
		return nil, fmt.Errorf("ci: reading its own executable: %w", err)
	}
	self := filepath.Join(o.Repo, Dir, "bin", filepath.Base(o.Self))
	if err := os.MkdirAll(filepath.Dir(self), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(self), ".self-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Chmod(0o755), tmp.Close()); err != nil {
		return nil, fmt.Errorf("ci: copying its own executable: %w", err)
	}
	if err := os.Rename(tmp.Name(), self); err != nil {
		return nil, err
	}
	o.Self = self
	return &gate{o: o}, nil
}

func (g *gate) stage(name string) { ui.Info("── %s", name) }

// add runs one check and records it.
func (g *gate) add(suite, name string, f func() error) error {
	step := ui.Start("%s", name)
	err := f()
	step.End(err)
	c := report.Case{Suite: suite, Name: name, Duration: step.Elapsed()}
	if err != nil {
		c.Failure = err.Error()
		ui.Failure(name, err.Error())
	}
	g.cases = append(g.cases, c)
	return err
}

func (g *gate) cmd(ctx context.Context, name string, command string, args ...string) {
	g.add("static", name, func() error { return g.o.Runner.Run(ctx, command, args...) })
}

// static runs the checks of internal/check for every profile, each its
// own line.
func (g *gate) static(ctx context.Context, s *stack.Stack, graph *stack.Graph) {
	var paths map[string]string
	var shellcheck string
	if err := g.add("static", "tools: "+strings.Join(tools.Static, ", ")+", Debian's "+tools.Shellcheck.Package, func() (err error) {
		if paths, err = g.o.Tools.Ensure(ctx, tools.Static...); err != nil {
			return err
		}
		shellcheck, err = tools.Shellcheck.Ensure(ctx, g.o.Runner)
		return err
	}); err != nil {
		return
	}
	start := time.Now()
	r := *g.o.Runner
	r.Env = g.o.Tools.Env("")
	rep, err := check.All(ctx, check.Options{Runner: &r, Stack: s, Graph: graph,
		Helm: paths["helm"], Skaffold: paths["skaffold"], KubeScore: paths["kube-score"],
		Shellcheck: shellcheck, Actionlint: paths["actionlint"], Profiles: config.Profiles})
	var failures []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		failures = j.Unwrap()
	} else if err != nil {
		failures = []error{err}
	}
	claimed := make([]bool, len(failures))
	if rep != nil {
		for _, t := range rep.Timings {
			c := report.Case{Suite: "static", Name: t.Check, Duration: t.Elapsed}
			for i, f := range failures {
				if cf := (*check.Failure)(nil); errors.As(f, &cf) && cf.Check == t.Check {
					c.Failure, claimed[i] = f.Error(), true
				}
			}
			mark := "✓"
			if c.Failure != "" {
				mark = "✗"
				ui.Failure(t.Check, c.Failure)
			}
			ui.Info("%s %s (%s)", mark, t.Check, ui.Round(t.Elapsed))
			g.cases = append(g.cases, c)
		}
		for _, n := range rep.Notes {
			ui.Info("note: %v", n)
		}
	}
	for i, f := range failures {
		if !claimed[i] {
			g.cases = append(g.cases, report.Case{Suite: "static", Name: "checks", Duration: time.Since(start), Failure: f.Error()})
			ui.Failure("checks", f.Error())
		}
	}
}

// deploy copies the platform, deploys every layer to a fresh sim cluster
// from empty, then again (every layer must be unchanged), and tears the
// cluster down whatever happened.
func (g *gate) deploy(ctx context.Context) {
	dir := filepath.Join(g.o.Repo, Dir, "platform")
	if err := g.add("deploy", "copy the platform to "+filepath.Join(Dir, "platform"), func() error {
		c := sim.New(dir, g.o.Tools, g.o.Runner)
		if _, err := os.Stat(c.Dir); err == nil {
			if err := c.Down(ctx, true); err != nil {
				return err
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		return engine.CopyPlatform(g.o.Repo, dir)
	}); err != nil {
		return
	}
	defer g.add("deploy", "tear the sim cluster down (its logs kept in "+filepath.Join(Dir, "sim-logs")+")", func() error {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c := sim.New(dir, g.o.Tools, g.o.Runner)
		logs := filepath.Join(g.o.Repo, Dir, "sim-logs")
		os.RemoveAll(logs)
		copyErr := os.CopyFS(logs, os.DirFS(filepath.Join(c.Dir, "logs")))
		return errors.Join(c.Down(dctx, true), copyErr)
	})
	for _, pass := range []struct {
		name string
		want engine.Action
	}{{"all from empty", engine.Deployed}, {"all again: every layer unchanged", engine.Unchanged}} {
		results, _ := g.layerPass("deploy", dir, pass.name, every(pass.want), func() error {
			cmd := exec.CommandContext(ctx, g.o.Self, "all")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "ALT_CLUSTER=sim", "ALT_PROFILE=dev")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%w\n%s", err, tail(string(out), 60))
			}
			return nil
		})
		if pass.want == engine.Deployed {
			g.cold = results
		}
	}
}

// layerPass runs one deploy of every layer (run) in the platform copy dir
// as the check name of stage, which fails unless each layer ended as want
// says, and records each layer's result as its own case.
func (g *gate) layerPass(stage, dir, name string, want func(layer string) engine.Action, run func() error) ([]engine.Result, error) {
	var results []engine.Result
	err := g.add(stage, name, func() error {
		err := run()
		results, _ = engine.ReadResults(dir)
		if err != nil {
			return err
		}
		var wrong []string
		for _, r := range results {
			if r.Action != want(r.Layer) {
				wrong = append(wrong, fmt.Sprintf("%s %s (want %s)", r.Layer, r.Action, want(r.Layer)))
			}
		}
		if len(wrong) > 0 {
			return fmt.Errorf("layers that did not end as wanted: %s", strings.Join(wrong, ", "))
		}
		return nil
	})
	for _, r := range results {
		c := report.Case{Suite: stage + ": " + name, Name: r.Layer, Duration: r.Duration}
		switch r.Action {
		case engine.Failed:
			c.Failure = r.Detail
		case engine.NotStarted:
			c.Skipped = "not started: a layer it needs failed"
		}
		g.cases = append(g.cases, c)
	}
	return results, err
}

// every wants the same action of every layer.
func every(a engine.Action) func(string) engine.Action {
	return func(string) engine.Action { return a }
}

// finish writes the reports and prints the table of checks.
func (g *gate) finish(graph *stack.Graph, s *stack.Stack) error {
	var rows [][]string
	var failed []report.Case
	for _, c := range g.cases {
		state := "ok"
		switch {
		case c.Failure != "":
			state = "FAILED"
			// A pass's per-layer rows repeat the failure of its own line.
			if !strings.HasPrefix(c.Suite, "deploy: ") && !strings.HasPrefix(c.Suite, "kind: ") {
				failed = append(failed, c)
			}
		case c.Skipped != "":
			state = "skipped"
		}
		rows = append(rows, []string{c.Suite, c.Name, state, ui.Round(c.Duration).String()})
	}
	ui.Table([]string{"STAGE", "CHECK", "RESULT", "TIME"}, rows)
	// Their reasons again, last, where a log's tail shows them.
	for _, c := range failed {
		ui.Failure(c.Name, tail(c.Failure, 30))
	}

	var errs []error
	junit, err := report.JUnit(g.cases)
	if err == nil {
		path := filepath.Join(g.o.Repo, Dir, "junit.xml")
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = os.WriteFile(path, junit, 0o644)
			ui.Info("JUnit report: %s", path)
		}
	}
	errs = append(errs, err)
	if g.o.Summary != "" {
		mermaid := ""
		if graph != nil && s != nil {
			mermaid = graph.Mermaid(s.Names())
		}
		f, err := os.OpenFile(g.o.Summary, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = f.WriteString(report.Summary(g.cases, mermaid, engine.Gantt("all from empty (sim)", g.cold)))
			f.Close()
		}
		errs = append(errs, err)
	}
	if len(failed) > 0 {
		var names []string
		for _, c := range failed {
			names = append(names, c.Name)
		}
		errs = append(errs, fmt.Errorf("%d check(s) failed: %s", len(failed), strings.Join(names, "; ")))
	}
	return errors.Join(errs...)
}

// failedTests are the lines of go test's output that name a failed test
// or package, in order.
func failedTests(out string) []string {
	var failed []string
	for _, l := range strings.Split(out, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "--- FAIL: ") || strings.HasPrefix(l, "FAIL\t") {
			failed = append(failed, strings.TrimRight(l, " \r"))
		}
	}
	return failed
}

func tail(s string, n int) string { return strings.Join(run.Tail(s, n), "\n") }
