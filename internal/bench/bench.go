// Package bench measures the engine against Skaffold's own run of the root
// config, on fresh sim clusters, in one run on one machine.
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/check"
	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/sim"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
)

// Result is one measured comparison.
type Result struct {
	Case     string
	Ours     time.Duration
	Skaffold time.Duration
	Goal     float64 // the ratio ours/skaffold must stay under
	// Prepared and Layers are what the run of `all` said of itself: the
	// times of its preparation, and each layer's start, time and steps.
	Prepared string
	Layers   []engine.Result
}

// Ratio is ours as a share of Skaffold's time.
func (r Result) Ratio() float64 { return float64(r.Ours) / float64(r.Skaffold) }

// Run copies the platform twice, starts a fresh sim cluster for each, and
// times `all` (the Mage binary self, run in one copy) against
// `skaffold deploy -p dev` of the root config (the other copy) with the same
// build-artifacts file: cold, then again with nothing changed.
func Run(ctx context.Context, repo, self string, tc *tools.Cache) ([]Result, error) {
	paths, err := tc.Ensure(ctx, tools.Deploy...)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "alt-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	ours, theirs := filepath.Join(work, "engine"), filepath.Join(work, "skaffold")
	for _, dir := range []string{ours, theirs} {
		if err := engine.CopyPlatform(repo, dir); err != nil {
			return nil, err
		}
	}
	r := &run.Runner{}
	var clusters []*sim.Cluster
	defer func() {
		for _, c := range clusters {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			c.Down(dctx, true)
			cancel()
		}
	}()
	kubeconfigs := map[string]string{}
	for _, dir := range []string{ours, theirs} {
		c := sim.New(dir, tc, r)
		clusters = append(clusters, c)
		kc, err := c.Up(ctx)
		if err != nil {
			return nil, err
		}
		kubeconfigs[dir] = kc
	}

	s, err := stack.Load(theirs)
	if err != nil {
		return nil, err
	}
	if err := charts.Vendor(theirs); err != nil {
		return nil, err
	}
	artifacts := filepath.Join(work, "build-artifacts.json")
	if err := stack.Artifacts(stack.Placeholders("dev", s.Images("dev"))).Write(artifacts); err != nil {
		return nil, err
	}
	skaffold := &run.Runner{Dir: theirs, Env: tc.Env(kubeconfigs[theirs], "ALT_CERT_MANAGER=off")}
	deploySkaffold := func() (time.Duration, error) {
		step := ui.Start("skaffold deploy -p dev (root config, %d layers in requires order)", len(s.Layers))
		start := time.Now()
		err := step.End(skaffold.Run(ctx, paths["skaffold"], "deploy", "-f", stack.RootFile, "-p", "dev", "--build-artifacts", artifacts))
		return time.Since(start), err
	}
	deployOurs := func() (time.Duration, string, error) {
		step := ui.Start("all (this engine)")
		start := time.Now()
		cmd := exec.CommandContext(ctx, self, "all")
		cmd.Dir = ours
		cmd.Env = append(os.Environ(), "ALT_CLUSTER=sim", "ALT_PROFILE=dev", "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("all: %w\n%s", err, out)
		}
		return time.Since(start), prepared(string(out)), step.End(err)
	}

	var results []Result
	for _, c := range []struct {
		name string
		goal float64
	}{{"cold, from empty: `all` vs `skaffold deploy -p dev` of the root config", 0.35}, {"no-op, nothing changed: `all` vs `skaffold deploy -p dev` again", 0.01}} {
		st, err := deploySkaffold()
		if err != nil {
			return nil, err
		}
		ot, prep, err := deployOurs()
		if err != nil {
			return nil, err
		}
		layers, err := engine.ReadResults(ours)
		if err != nil {
			return nil, err
		}
		results = append(results, Result{Case: c.name, Ours: ot, Skaffold: st, Goal: c.goal, Prepared: prep, Layers: layers})
	}
	return results, nil
}

// prepared is the run's "run prepared in ..." line, without its mark.
func prepared(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if _, after, ok := strings.Cut(l, "run prepared in "); ok {
			return after
		}
	}
	return ""
}

// Static times the static checks of ci (internal/check, every profile)
// against what they replace at the least: `skaffold render --offline` of
// the root config for the three profiles, one after another.
func Static(ctx context.Context, repo string, tc *tools.Cache) (Result, error) {
	paths, err := tc.Ensure(ctx, tools.Static...)
	if err != nil {
		return Result{}, err
	}
	s, g, err := stack.LoadAll(repo)
	if err != nil {
		return Result{}, err
	}
	if err := charts.Vendor(repo); err != nil {
		return Result{}, err
	}
	r := &run.Runner{Dir: repo, Env: tc.Env("")}
	step := ui.Start("skaffold render --offline -p dev, staging, prod (one after another)")
	start := time.Now()
	for _, p := range config.Profiles {
		if _, _, err := check.SkaffoldRender(ctx, r, s, paths["skaffold"], p); err != nil {
			return Result{}, step.End(err)
		}
	}
	theirs := time.Since(start)
	step.Done()
	step = ui.Start("static checks of ci, every profile")
	start = time.Now()
	_, err = check.All(ctx, check.Options{Runner: r, Stack: s, Graph: g, Helm: paths["helm"], Skaffold: paths["skaffold"], KubeScore: paths["kube-score"], Actionlint: paths["actionlint"], Profiles: config.Profiles})
	if err := step.End(err); err != nil {
		return Result{}, err
	}
	return Result{Case: "static checks of `ci` (3 profiles) vs `skaffold render --offline` of the 3 profiles one after another", Ours: time.Since(start), Skaffold: theirs, Goal: 1}, nil
}

// Markdown renders the results as the table BENCHMARKS.md keeps.
func Markdown(results []Result) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Measured %s on %s (%s/%s, %d CPUs), fresh sim clusters, profile dev.\n\n",
		time.Now().UTC().Format("2006-01-02"), host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	b.WriteString("| case | this repository | Skaffold alone | ratio | goal |\n|---|---|---|---|---|\n")
	for _, r := range results {
		verdict := "met"
		if r.Ratio() > r.Goal {
			verdict = "NOT met"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f%% | ≤ %.0f%% (%s) |\n", r.Case, ui.Round(r.Ours), ui.Round(r.Skaffold), 100*r.Ratio(), 100*r.Goal, verdict)
	}
	for _, r := range results {
		if len(r.Layers) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s: `all` prepared in %s; each layer, started at (from the run's start), took:\n\n", r.Case, r.Prepared)
		b.WriteString("| layer | action | started at | time | steps |\n|---|---|---|---|---|\n")
		for _, l := range r.Layers {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", l.Layer, l.Action, ui.Round(l.Started), ui.Round(l.Duration), engine.Timings(l.Steps))
		}
		if g := engine.Gantt(r.Case, r.Layers); g != "" {
			fmt.Fprintf(&b, "\n```mermaid\n%s```\n", g)
		}
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "\nLoad average at the end (1, 5, 15 min): %s\n", strings.Join(strings.Fields(string(load))[:3], ", "))
	}
	return b.String()
}
