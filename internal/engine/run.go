package engine

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
)

// A Mage invocation runs the targets named on its command line one after
// another, in one process, each with the same context; a target's
// dependencies (mg.CtxDeps) run once per process. The run begins with the
// first deploying target and ends after the last one named: Enter, called
// first by every deploying target, marks the context it hands to its
// dependencies, so a target called with an unmarked context is one that
// mage called for a name on its command line; Exit counts those, and the
// last one (or the first that fails: mage exits on it) finishes the run.

// targets counts the deploying targets named on the command line.
type targets struct {
	mu       sync.Mutex
	named    int // how many were named
	ended    int // how many have returned
	finished bool
}

type inRunKey struct{}

// Enter marks ctx as inside the run and reports whether the caller is a
// target named on the command line (top) rather than a dependency.
func Enter(ctx context.Context) (_ context.Context, top bool) {
	if ctx.Value(inRunKey{}) != nil {
		return ctx, false
	}
	return context.WithValue(ctx, inRunKey{}, true), true
}

// Exit ends a target. For a target named on the command line, it finishes
// the run (lock released, one summary, one error naming what failed) when
// it is the last one named or when it failed.
func (e *Engine) Exit(top bool, err error) error {
	if !top || !e.targets.end(err) {
		return err
	}
	return e.Finish(err)
}

// end counts a named target's return and reports whether it ends the run.
func (t *targets) end(err error) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended++
	if t.finished || (err == nil && t.ended < t.named) {
		return false
	}
	t.finished = true
	return true
}

// deployingTargets counts the targets named in mage's arguments that deploy
// a layer; mage's own flags are parsed as mage parses them.
func deployingTargets(g *stack.Graph, args []string) int {
	n := 0
	for _, t := range CommandTargets(args) {
		if g != nil && len(g.Reach[strings.ToLower(t)]) > 0 {
			n++
		}
	}
	return n
}

// CommandTargets are the target names of a compiled Mage binary's command
// line, parsed with the flags that binary accepts (-v, -l, -h, -t); none
// when it only lists or explains targets.
func CommandTargets(args []string) []string {
	fs := flag.NewFlagSet("mage", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	list, help := fs.Bool("l", false, ""), fs.Bool("h", false, "")
	fs.Bool("v", false, "")
	fs.Duration("t", 0, "")
	if fs.Parse(args) != nil || *list || *help {
		return nil
	}
	return fs.Args()
}

// runLayers are the layers this run deploys: those of the targets named on
// the command line (every layer when none was named, e.g. a bench or a
// test) and any other that was started.
func (e *Engine) runLayers() []string {
	want := e.Graph.RunLayers(CommandTargets(os.Args[1:]))
	if len(want) == 0 {
		want = e.Stack.Names()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, l := range e.Stack.Names() {
		if _, started := e.results[l]; started || slices.Contains(want, l) {
			out = append(out, l)
		}
	}
	return out
}

func (e *Engine) toolVersions() map[string]string {
	v := map[string]string{}
	for _, n := range tools.Deploy {
		t, _ := tools.Lookup(n)
		v[n] = t.Version
	}
	return v
}

// Results are the outcomes of the given layers in requires order; those
// that never started are listed as not started.
func (e *Engine) Results(layers []string) []Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Result
	for _, l := range e.Stack.Names() {
		if r, ok := e.results[l]; ok {
			out = append(out, *r)
		} else if slices.Contains(layers, l) {
			out = append(out, Result{Layer: l, Action: NotStarted})
		}
	}
	return out
}

// ResultsFile is where the last run's results are kept, relative to the
// repository (ci reads it for its reports).
const ResultsFile = ".cache/run/results.json"

// Finish ends the run: it releases the lock, prints the summary table,
// keeps the results in ResultsFile and turns err into one error that names
// the failed and the not started layers.
func (e *Engine) Finish(err error) error {
	if err == nil {
		// Staging: what it verified, for prod to deploy.
		err = e.writeRelease(e.runCtx)
	}
	e.Close()
	e.cancelRun(nil)
	results := e.Results(e.runLayers())
	if len(e.prep) > 0 {
		ui.Info("run prepared in %s", Timings(e.prep))
	}
	PrintSummary(results)
	if b, jerr := json.MarshalIndent(results, "", "  "); jerr == nil {
		path := filepath.Join(e.Repo, ResultsFile)
		if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
			os.WriteFile(path, b, 0o644)
		}
	}
	if err == nil {
		return nil
	}
	return e.runError(err, results)
}

func (e *Engine) runError(err error, results []Result) error {
	if e.prepareErr != nil {
		// Printed in full when it happened; every dependant repeats it.
		return fmt.Errorf("the run could not start: %s", firstLine(e.prepareErr.Error()))
	}
	var failed, notStarted []string
	for _, r := range results {
		switch r.Action {
		case Failed:
			failed = append(failed, r.Layer)
		case NotStarted:
			notStarted = append(notStarted, r.Layer)
		}
	}
	if len(failed) == 0 {
		return err
	}
	msg := "failed: " + strings.Join(failed, ", ")
	if len(notStarted) > 0 {
		msg += "; not started: " + strings.Join(notStarted, ", ")
	}
	if cause := context.Cause(e.runCtx); errors.Is(cause, ErrLockLost) {
		msg += "; " + cause.Error()
	}
	return fmt.Errorf("%s (the diagnosis is above)", msg)
}
