//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
	"github.com/magefile/mage/mg"
)

var (
	theRunOnce sync.Once
	theRun     *engine.Engine
	theRunErr  error
)

// eng is this invocation's run: config, stack and graph are loaded and
// checked once, before any target does anything.
func eng() (*engine.Engine, error) {
	theRunOnce.Do(func() {
		repo, err := engine.FindRepo()
		if err != nil {
			theRunErr = err
			return
		}
		theRun, theRunErr = engine.New(repo, mg.Verbose(), os.Args[1:])
	})
	return theRun, theRunErr
}

// deployLayer deploys one layer with the run's engine.
func deployLayer(ctx context.Context, layer string) error {
	e, err := eng()
	if err != nil {
		return err
	}
	return e.Deploy(ctx, layer)
}

// guard brackets every deploying target; call it as
// `defer guard(&ctx, &err)()` first thing. It marks ctx as inside the run,
// so the target's dependencies are known as such (engine.Enter). It turns a
// failed dependency (mg.CtxDeps panics) into the target's error: mage runs
// a dependency once and, when it panics, hands its error only to the first
// target that waited for it. When the target is one named on the command
// line, the last of those (or the first that fails) finishes the run: lock
// released, summary printed, one error naming what failed.
func guard(ctx *context.Context, err *error) func() {
	e, eerr := eng() // made by the first target, before it does anything
	var top bool
	*ctx, top = engine.Enter(*ctx)
	return func() {
		if v := recover(); v != nil {
			*err = fmt.Errorf("%v", v)
		}
		if eerr != nil {
			if *err == nil {
				*err = eerr
			}
			return
		}
		*err = e.Exit(top, *err)
	}
}

// Dev deploys every layer to a local cluster: kind when a Docker daemon
// answers, else the simulated cluster (said loudly). Reads every ALT_*
// setting (see config:show).
func Dev(ctx context.Context) error {
	cfg, err := config.FromEnvironment()
	if err != nil {
		return err
	}
	if cfg.Cluster == config.ClusterSim {
		ui.Banner("No Docker daemon (or ALT_CLUSTER=sim): deploying to the SIMULATED cluster.",
			"Its control plane is real; its nodes are simulated and NO CONTAINER RUNS.",
			"Pods become Ready without running; nothing answers on their ports.")
	}
	if err := All(ctx); err != nil {
		return err
	}
	e, err := eng()
	if err != nil {
		return err
	}
	for _, line := range e.Where() {
		ui.Info("%s", line)
	}
	return nil
}

// Graph prints the layer graph (from the mg.Deps of the layer targets) as
// Mermaid.
func Graph() error {
	e, err := eng()
	if err != nil {
		return err
	}
	fmt.Print(e.Graph.Mermaid(e.Stack.Names()))
	return nil
}

// Plan says, for each layer in graph order, whether a run would deploy or skip it and why, changing nothing. Reads ALT_PROFILE and ALT_CLUSTER. -json: the same, machine-readable on stdout.
func Plan(ctx context.Context, json *bool) error {
	items, err := plan(ctx)
	if err != nil {
		return err
	}
	if json != nil && *json {
		return printJSON(items)
	}
	var rows [][]string
	for _, it := range items {
		rows = append(rows, []string{it.Layer, it.Action, strings.Join(it.Needs, ","), it.Reason})
	}
	ui.Table([]string{"LAYER", "ACTION", "NEEDS", "WHY"}, rows)
	return nil
}

func plan(ctx context.Context) ([]engine.PlanItem, error) {
	e, err := eng()
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return e.Plan(ctx)
}

// Validate loads the Skaffold files and the Mage graph and reports every
// problem, then holds the Alt checkout (ALT_SRC) to the contract's pinned
// commit and the layers' build contexts, touching no cluster.
func Validate(ctx context.Context) error {
	s := ui.Start("stack: %s, its layers and the Mage graph", stack.RootFile)
	e, err := eng()
	if err := s.End(err); err != nil {
		return err
	}
	return e.ValidateSources(ctx)
}

type Config mg.Namespace

// Show prints every setting, its effective value and where it came from.
func (Config) Show() error {
	cfg, err := config.FromEnvironment()
	var rows [][]string
	for _, s := range cfg.Settings {
		v := s.Value
		if v == "" {
			v = "(unset)"
		}
		rows = append(rows, []string{s.Env, v, s.Source, s.Doc})
	}
	ui.Table([]string{"VARIABLE", "VALUE", "FROM", "MEANING"}, rows)
	return err
}

type Tools mg.Namespace

// Install builds every pinned tool into the cache (ALT_TOOLS_DIR) unless
// already there; the node binaries of the offline kind images are left to
// kind:image.
func (Tools) Install(ctx context.Context) error {
	c, err := toolsCache()
	if err != nil {
		return err
	}
	var names []string
	for _, t := range tools.All {
		if !t.KindImage {
			names = append(names, t.Name)
		}
	}
	s := ui.Start("tools in %s", c.Dir)
	_, err = c.Ensure(ctx, names...)
	return s.End(err)
}

// Versions prints each pinned tool, its version and whether it is installed.
func (Tools) Versions() error {
	c, err := toolsCache()
	if err != nil {
		return err
	}
	var rows [][]string
	for _, t := range tools.All {
		state := "not installed"
		if c.Installed(t) {
			state = c.Path(t)
		}
		rows = append(rows, []string{t.Name, t.Version, state})
	}
	ui.Table([]string{"TOOL", "PINNED", "INSTALLED"}, rows)
	return nil
}

func newRunner() *run.Runner { return &run.Runner{Verbose: mg.Verbose()} }

// repoSelfTools are what targets that run these targets again in a copy of
// the platform need: the repository, this compiled Mage binary, the tools.
func repoSelfTools() (repo, self string, tc *tools.Cache, err error) {
	if repo, err = engine.FindRepo(); err != nil {
		return
	}
	if self, err = os.Executable(); err != nil {
		return
	}
	tc, err = toolsCache()
	return
}

func toolsCache() (*tools.Cache, error) {
	cfg, err := config.FromEnvironment()
	if err != nil {
		return nil, err
	}
	return &tools.Cache{Dir: cfg.ToolsDir, Runner: newRunner()}, nil
}
