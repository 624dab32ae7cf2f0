package check

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"time"

	"github.com/alt-platform/orchestration/internal/contract"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
)

// Options configure All.
type Options struct {
	// Runner runs helm and skaffold; its Env must put helm on PATH for
	// skaffold (tools.Cache.Env). Nil: the caller's environment.
	Runner *run.Runner
	Stack  *stack.Stack
	Graph  *stack.Graph
	// Helm, Skaffold and KubeScore are the pinned binaries
	// (tools.Cache.Ensure). An empty Skaffold skips SkaffoldRender, an empty
	// KubeScore skips KubeScore (each says so in a note).
	Helm, Skaffold, KubeScore string
	// Shellcheck and Actionlint lint scripts/ and .github/workflows (an
	// empty one is skipped, with a note).
	Shellcheck, Actionlint string
	Profiles               []string
}

// Timing is how long one check took (wall clock; checks overlap).
type Timing struct {
	Check   string
	Elapsed time.Duration
}

// Failure is what one check of All found wrong: All's error joins them.
type Failure struct {
	Check string // as in Timing
	Err   error
}

func (f *Failure) Error() string { return f.Check + ": " + f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Report is what All found besides problems.
type Report struct {
	Notes    []Note
	Timings  []Timing
	Rendered []Rendered
	Elapsed  time.Duration
}

// All runs every static check for the profiles: Render, then Strict,
// Policy, Secrets, References, Hooks, Owners, Flows, Contract and KubeScore
// on the rendered objects; Deployed and Committed on the repository; Lint
// (every release's values) and LintAlone (each chart with its ci/ cases);
// Shellcheck on scripts/ and Actionlint on the workflows;
// and SkaffoldRender of the root config per profile (compared with Render
// by SameAsSkaffold). The helm and skaffold processes run concurrently. The
// error joins every check's problems, each prefixed with the check's name.
func All(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	var mu sync.Mutex
	var errs []error
	record := func(name string, t time.Time, notes []Note, err error) {
		mu.Lock()
		defer mu.Unlock()
		rep.Timings = append(rep.Timings, Timing{name, time.Since(t)})
		rep.Notes = append(rep.Notes, notes...)
		if err != nil {
			errs = append(errs, &Failure{Check: name, Err: err})
		}
	}

	var wg sync.WaitGroup
	type skaffoldResult struct {
		objs []*Object
		err  error
	}
	skaffoldOut := make([]skaffoldResult, len(o.Profiles))
	if o.Skaffold != "" {
		for i, p := range o.Profiles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.Now()
				objs, note, err := SkaffoldRender(ctx, o.Runner, o.Stack, o.Skaffold, p)
				skaffoldOut[i] = skaffoldResult{objs, err}
				record("skaffold render -p "+p, t, []Note{note}, err)
			}()
		}
	} else {
		rep.Notes = append(rep.Notes, Note{Check: "skaffold", What: "skaffold render", Why: "no skaffold binary given"})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.Now()
		record("lint", t, nil, Lint(ctx, o.Runner, o.Stack, o.Helm, o.Profiles...))
		t = time.Now()
		record("lint alone", t, nil, LintAlone(ctx, o.Runner, o.Stack.Repo, o.Helm))
	}()
	if o.Shellcheck != "" {
		t := time.Now()
		record("shellcheck", t, nil, Shellcheck(ctx, o.Runner, o.Stack.Repo, o.Shellcheck))
	} else {
		rep.Notes = append(rep.Notes, Note{Check: "shellcheck", What: "shellcheck of " + stack.ScriptsDir, Why: "no shellcheck binary given"})
	}
	if o.Actionlint != "" {
		t := time.Now()
		record("actionlint", t, nil, Actionlint(ctx, o.Runner, o.Stack.Repo, o.Actionlint, o.Shellcheck))
	} else {
		rep.Notes = append(rep.Notes, Note{Check: "actionlint", What: "actionlint of " + WorkflowsDir, Why: "no actionlint binary given"})
	}

	t := time.Now()
	rendered, err := Render(ctx, o.Runner, o.Stack, o.Helm, o.Profiles...)
	record("render", t, Skipped(rendered), err)
	rep.Rendered = rendered
	objs := Objects(rendered)

	t = time.Now()
	notes, err := Strict(objs)
	record("strict", t, notes, err)

	t = time.Now()
	notes, err = Policy(objs)
	record("policy", t, notes, err)

	t = time.Now()
	record("secrets", t, nil, Secrets(o.Stack.Repo, objs))

	t = time.Now()
	record("quotas", t, nil, Quotas(objs))

	t = time.Now()
	notes, err = References(o.Stack, o.Graph, objs)
	record("references", t, notes, err)

	t = time.Now()
	notes, err = Hooks(o.Stack, o.Graph, objs)
	record("hooks", t, notes, err)

	t = time.Now()
	record("owners", t, nil, errors.Join(Owners(objs), Deployed(o.Stack)))

	t = time.Now()
	note, err := Committed(ctx, o.Runner, o.Stack)
	if note != nil {
		notes = []Note{*note}
	} else {
		notes = nil
	}
	record("committed", t, notes, err)

	t = time.Now()
	table, err := FlowTable(o.Stack.Repo, foundationValues(o.Stack, o.Profiles)...)
	if err == nil {
		err = Flows(table, objs)
	}
	record("flows", t, nil, err)

	t = time.Now()
	c, err := contract.Load(o.Stack.Repo)
	if err == nil {
		err = Contract(c, o.Stack, objs)
	}
	record("contract", t, nil, err)

	if o.KubeScore != "" {
		t = time.Now()
		notes, err = KubeScore(ctx, o.Runner, o.Stack.Repo, o.KubeScore, objs)
		record("kube-score", t, notes, err)
	} else {
		rep.Notes = append(rep.Notes, Note{Check: "kube-score", What: "kube-score", Why: "no kube-score binary given"})
	}

	wg.Wait()
	if o.Skaffold != "" {
		t = time.Now()
		var cerrs []error
		for i, p := range o.Profiles {
			if skaffoldOut[i].err == nil {
				if err := SameAsSkaffold(o.Stack, p, skaffoldOut[i].objs, rendered); err != nil {
					cerrs = append(cerrs, err)
				}
			}
		}
		record("same as skaffold", t, nil, errors.Join(cerrs...))
	}
	rep.Notes = dedupeNotes(rep.Notes)
	rep.Elapsed = time.Since(start)
	return rep, errors.Join(errs...)
}

// foundationValues are the values files of the release of charts/foundation
// (the first profile's), which may override the flow table.
func foundationValues(s *stack.Stack, profiles []string) []string {
	for _, p := range profiles {
		for _, l := range s.Layers {
			v, err := l.View(p, nil)
			if err != nil {
				continue
			}
			for _, r := range v.Releases {
				if filepath.ToSlash(r.Chart) == filepath.Dir(FlowFile) {
					return r.ValuesFiles
				}
			}
		}
	}
	return nil
}
