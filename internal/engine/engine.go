// Package engine deploys the platform's layers: once per run it checks the
// configuration and the stack, installs the pinned tools, ensures the
// cluster, takes the cluster's deploy lock and decides the images; then each
// layer target deploys its layer through Skaffold, unless the layer's inputs
// are unchanged since its last verified deploy and its objects are healthy,
// and verifies it with kstatus before recording it as done.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
	"sigs.k8s.io/cli-utils/pkg/object"
)

// Action is what happened to a layer in a run.
type Action string

const (
	Deployed   Action = "deployed"
	Unchanged  Action = "unchanged"
	Failed     Action = "failed"
	NotStarted Action = "not started"
)

// Result is one layer's outcome.
type Result struct {
	Layer    string        `json:"layer"`
	Action   Action        `json:"action"`
	Duration time.Duration `json:"duration"`
	Detail   string        `json:"detail"`
}

// Engine is one run against one cluster.
type Engine struct {
	Repo    string
	Cfg     *config.Config
	Stack   *stack.Stack
	Graph   *stack.Graph
	Tools   *tools.Cache
	Runner  *run.Runner
	Cluster Cluster
	// Env are the variables that switch conditional profiles (e.g.
	// ALT_CERT_MANAGER=off); they are passed to Skaffold and digested.
	Env map[string]string

	prepareOnce sync.Once
	prepareErr  error
	kube        *Kube
	kubeconfig  string
	images      map[string]string
	artifacts   string // build-artifacts file
	unlock      func()

	mu      sync.Mutex
	results map[string]*Result
}

// New loads the configuration and the stack and validates both; it touches
// no cluster. Every problem found is in the error.
func New(repo string, verbose bool) (*Engine, error) {
	cfg, cfgErr := config.FromEnvironment()
	s, stackErr := stack.Load(repo)
	var g *stack.Graph
	var graphErr error
	if stackErr == nil {
		if g, graphErr = stack.MageGraph(filepath.Join(repo, "magefiles")); graphErr == nil {
			graphErr = stack.Validate(s, g)
		}
	}
	if err := errors.Join(cfgErr, stackErr, graphErr); err != nil {
		return nil, err
	}
	r := &run.Runner{Verbose: verbose}
	e := &Engine{Repo: s.Repo, Cfg: cfg, Stack: s, Graph: g, Runner: r,
		Tools:   &tools.Cache{Dir: cfg.ToolsDir, Runner: r},
		Env:     map[string]string{},
		results: map[string]*Result{}}
	var err error
	if e.Cluster, err = newCluster(e); err != nil {
		return nil, err
	}
	return e, nil
}

var (
	shared     *Engine
	sharedErr  error
	sharedOnce sync.Once
)

// Shared is the engine of this process, made on first use: every Mage
// target of one run shares it, so the run prepares once.
func Shared(repo string, verbose bool) (*Engine, error) {
	sharedOnce.Do(func() { shared, sharedErr = New(repo, verbose) })
	return shared, sharedErr
}

// Prepare does the once-per-run work before the first layer: tools,
// cluster, lock, images. Later calls return the first call's result.
func (e *Engine) Prepare(ctx context.Context) error {
	e.prepareOnce.Do(func() {
		// Printed whole, once: a layer's result keeps only its first line.
		if e.prepareErr = e.prepare(ctx); e.prepareErr != nil {
			ui.Failure("preparing the run failed", e.prepareErr.Error())
		}
	})
	return e.prepareErr
}

func (e *Engine) prepare(ctx context.Context) error {
	if p, ok := e.Cluster.(preflighter); ok {
		if err := p.Preflight(ctx); err != nil {
			return err
		}
	}
	step := ui.Start("tools: %s", strings.Join(tools.Deploy, ", "))
	if _, err := e.Tools.Ensure(ctx, tools.Deploy...); err != nil {
		step.Fail()
		return err
	}
	step.Done()
	e.reportCertManager()
	kubeconfig, err := e.Cluster.Ensure(ctx)
	if err != nil {
		return err
	}
	e.kubeconfig = kubeconfig
	e.Runner.Env = e.Tools.Env(kubeconfig, e.envList()...)
	if e.kube, err = Connect(ctx, kubeconfig, ""); err != nil {
		if e.Cfg.Cluster == config.ClusterContext {
			return fmt.Errorf("ALT_KUBE_CONTEXT=%q: %w", e.Cfg.KubeContext, err)
		}
		return err
	}
	if e.unlock, err = e.kube.Lock(ctx, Holder(CommandLine())); err != nil {
		return err
	}
	return e.decideImages(ctx)
}

func (e *Engine) envList() []string {
	var env []string
	for k, v := range e.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// decideImages writes the build-artifacts file every layer deploys with.
// On sim nothing is built: each image gets the placeholder tag "sim".
func (e *Engine) decideImages(ctx context.Context) error {
	e.artifacts = filepath.Join(e.Repo, ".cache", "run", e.Cfg.Profile+"-build-artifacts.json")
	if err := os.MkdirAll(filepath.Dir(e.artifacts), 0o755); err != nil {
		return err
	}
	if e.Cluster.Name() == config.ClusterSim {
		e.images = e.placeholderImages()
		ui.Warn("sim cluster: no image is built; every first-party image gets the placeholder tag \"sim\" (containers do not run in a simulation)")
		return nil
	}
	return e.build(ctx)
}

// layerArtifacts writes the build-artifacts file of one layer: only its own
// images, so Skaffold warns about no image that the layer does not use.
func (e *Engine) layerArtifacts(v *stack.View) (string, error) {
	type build struct {
		ImageName string `json:"imageName"`
		Tag       string `json:"tag"`
	}
	builds := []build{}
	for _, a := range v.Artifacts {
		tag, ok := e.images[a.Image]
		if !ok {
			return "", fmt.Errorf("image %s of %s was not built in this run", a.Image, v.Layer.File)
		}
		builds = append(builds, build{a.Image, tag})
	}
	b, err := json.MarshalIndent(map[string]any{"builds": builds}, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(filepath.Dir(e.artifacts), fmt.Sprintf("%s-%s-artifacts.json", e.Cfg.Profile, v.Layer.Name))
	return path, os.WriteFile(path, b, 0o644)
}

// placeholderImages are the deterministic tags of a run that builds nothing.
func (e *Engine) placeholderImages() map[string]string {
	images := map[string]string{}
	for _, img := range e.Stack.Images(e.Cfg.Profile) {
		images[img] = img + ":sim"
	}
	return images
}

// Close releases the deploy lock.
func (e *Engine) Close() {
	if e.unlock != nil {
		e.unlock()
		e.unlock = nil
	}
}

// budget is the time one layer may take, deploy and verification included.
func (e *Engine) budget() time.Duration { return e.Cfg.LayerTimeout }

// Deploy deploys one layer unless it is unchanged and healthy, then
// verifies it and records its digest.
func (e *Engine) Deploy(ctx context.Context, name string) (err error) {
	start := time.Now()
	res := &Result{Layer: name}
	if err := e.Prepare(ctx); err != nil {
		// Nothing of this layer was tried; the error was printed in full.
		e.mu.Lock()
		e.results[name] = &Result{Layer: name, Action: NotStarted, Detail: "the run could not start: " + firstLine(err.Error())}
		e.mu.Unlock()
		return err
	}
	defer func() {
		res.Duration = time.Since(start)
		if err != nil {
			res.Action = Failed
			if res.Detail == "" {
				res.Detail = firstLine(err.Error())
			}
			err = fmt.Errorf("layer %s: %w", name, err)
		}
		e.mu.Lock()
		e.results[name] = res
		e.mu.Unlock()
	}()
	l := e.Stack.Layer(name)
	if l == nil {
		return fmt.Errorf("no such layer in %s", stack.RootFile)
	}
	v, err := l.View(e.Cfg.Profile, func(k string) string { return e.Env[k] })
	if err != nil {
		return err
	}
	step := ui.Start("%s (%s): check", name, l.Dir)
	d, err := e.decide(ctx, v)
	if err != nil {
		step.Fail()
		return err
	}
	if !d.Deploy {
		res.Action, res.Detail = Unchanged, "digest "+d.Inputs.Digest()
		step.Skip("unchanged (digest " + d.Inputs.Digest() + ", every object healthy)")
		return nil
	}
	step.Skip("deploy: " + d.Reason)

	// Before anything is applied: a chart that does not render fails here,
	// and the layer's releases and record are left as they are.
	step = ui.Start("%s: render its charts (helm template)", name)
	if err := e.renderCheck(ctx, v); err != nil {
		step.Fail()
		res.Detail = "its charts do not render; nothing was applied"
		ui.Failure(fmt.Sprintf("layer %s (%s) failed before deploying", name, l.File), err.Error())
		return err
	}
	step.Done()

	lctx, cancel := context.WithTimeout(ctx, e.budget())
	defer cancel()
	step = ui.Start("%s: skaffold deploy -p %s (budget %s)", name, e.Cfg.Profile, e.budget())
	for _, r := range v.Releases {
		did, err := e.kube.RecoverPending(lctx, r.Name, r.Namespace)
		if err != nil {
			step.Fail()
			return err
		}
		if did != "" {
			ui.Warn("%s", did)
		}
	}
	artifacts, err := e.layerArtifacts(v)
	if err != nil {
		step.Fail()
		return err
	}
	deployErr := e.Runner.Run(lctx, "skaffold", e.deployArgs(name, artifacts)...)
	var bad []Unhealthy
	if deployErr == nil {
		step.Done()
		step = ui.Start("%s: verify", name)
		var ids []object.ObjMetadata
		if ids, err = e.layerObjects(lctx, v); err == nil {
			bad, err = e.kube.Wait(lctx, ids)
		}
		if err == nil && len(bad) == 0 {
			step.Done()
			rec := Record{Digest: d.Inputs.Digest(), Profile: e.Cfg.Profile, Time: time.Now().UTC().Format(time.RFC3339), Inputs: d.Inputs}
			if err := e.kube.SaveRecord(ctx, name, rec); err != nil {
				return fmt.Errorf("verified, but recording its digest failed: %w", err)
			}
			res.Action, res.Detail = Deployed, d.Reason
			return nil
		}
	}
	step.Fail()
	// Forget the old record: a half-applied layer must be redeployed.
	e.kube.ForgetRecord(context.Background(), name)
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	if len(bad) == 0 {
		if ids, lerr := e.layerObjects(dctx, v); lerr == nil {
			bad, _ = e.kube.Check(dctx, ids)
		}
	}
	var why strings.Builder
	switch {
	case lctx.Err() == context.DeadlineExceeded:
		fmt.Fprintf(&why, "not ready within its budget of %s (ALT_LAYER_TIMEOUT)", e.budget())
	case ctx.Err() != nil:
		why.WriteString("cancelled")
	case deployErr != nil:
		why.WriteString("skaffold deploy failed" + skaffoldReason(deployErr))
	case err != nil:
		why.WriteString(err.Error())
	default:
		why.WriteString("objects not ready")
	}
	if len(bad) > 0 {
		res.Detail = fmt.Sprintf("%s: %s", why.String(), bad[0])
		fmt.Fprintf(&why, "\n%s", e.kube.Diagnose(dctx, bad))
	}
	switch {
	case ctx.Err() != nil:
		// Cancelled: what skaffold printed on its way out explains nothing.
	case deployErr != nil && lctx.Err() != nil && len(bad) > 0:
		fmt.Fprintf(&why, "\nskaffold deploy was stopped at the budget; `mage -v` streams its output")
	case deployErr != nil:
		fmt.Fprintf(&why, "\n%v", deployErr)
	}
	if res.Detail == "" {
		res.Detail = firstLine(why.String())
	}
	if c, ok := e.Cluster.(logCollector); ok && ctx.Err() == nil {
		if dir, lerr := c.CollectLogs(""); lerr != nil {
			fmt.Fprintf(&why, "\ncluster logs: %v", lerr)
		} else {
			fmt.Fprintf(&why, "\ncluster logs: %s", dir)
		}
	}
	ui.Failure(fmt.Sprintf("layer %s (%s) failed", name, l.File), why.String())
	return errors.New(res.Detail)
}

func (e *Engine) deployArgs(layer, artifacts string) []string {
	args := []string{"deploy", "-f", stack.RootFile, "-m", layer, "-p", e.Cfg.Profile,
		"--build-artifacts", artifacts, "--status-check=false"}
	if e.Cfg.Registry != "" {
		args = append(args, "--default-repo", e.Cfg.Registry)
	}
	return args
}

// decision is whether a layer must be deployed, and why.
type decision struct {
	Deploy bool
	Reason string
	Inputs Inputs
}

// decide compares the layer's inputs with the record of its last verified
// deploy and checks that every object of its releases is healthy.
func (e *Engine) decide(ctx context.Context, v *stack.View) (decision, error) {
	in, err := layerInputs(e.Repo, v, e.images, e.Env, e.toolVersions())
	if err != nil {
		return decision{}, err
	}
	d := decision{Deploy: true, Inputs: in}
	recs, err := e.kube.Records(ctx)
	if err != nil {
		return d, err
	}
	rec, ok := recs[v.Layer.Name]
	switch {
	case !ok:
		d.Reason = "no verified deploy recorded"
		return d, nil
	case rec.Digest != in.Digest():
		d.Reason = "changed: " + shortList(in.Changed(rec.Inputs), 4)
		return d, nil
	}
	for _, r := range v.Releases {
		hr, err := e.kube.Release(ctx, r.Name, r.Namespace)
		if err != nil {
			return d, err
		}
		if hr == nil {
			d.Reason = fmt.Sprintf("release %s/%s is not installed", r.Namespace, r.Name)
			return d, nil
		}
		if hr.Status != "deployed" {
			d.Reason = fmt.Sprintf("release %s/%s revision %d is %s", r.Namespace, r.Name, hr.Revision, hr.Status)
			return d, nil
		}
		bad, err := e.kube.Check(ctx, hr.Objects)
		if err != nil {
			return d, err
		}
		if len(bad) > 0 {
			d.Reason = fmt.Sprintf("release %s: %s", r.Name, bad[0])
			return d, nil
		}
	}
	d.Deploy = false
	return d, nil
}

// layerObjects lists the objects of every release of the layer as Helm
// recorded them in their latest revision.
func (e *Engine) layerObjects(ctx context.Context, v *stack.View) ([]object.ObjMetadata, error) {
	var ids []object.ObjMetadata
	for _, r := range v.Releases {
		hr, err := e.kube.Release(ctx, r.Name, r.Namespace)
		if err != nil {
			return nil, err
		}
		if hr == nil {
			return nil, fmt.Errorf("release %s/%s was not installed", r.Namespace, r.Name)
		}
		if hr.Status != "deployed" {
			return nil, fmt.Errorf("release %s/%s revision %d is %s", r.Namespace, r.Name, hr.Revision, hr.Status)
		}
		ids = append(ids, hr.Objects...)
	}
	return ids, nil
}

func (e *Engine) toolVersions() map[string]string {
	v := map[string]string{}
	for _, n := range tools.Deploy {
		t, _ := tools.Lookup(n)
		v[n] = t.Version
	}
	return v
}

// RunLayers are the layers a run of these Mage targets deploys: the named
// layer targets and everything they need ("all", "dev" and "ci": every
// layer).
func (e *Engine) RunLayers(targets []string) []string {
	want := map[string]bool{}
	var add func(string)
	add = func(l string) {
		if want[l] {
			return
		}
		want[l] = true
		for _, n := range e.Graph.Needs[l] {
			add(n)
		}
	}
	for _, t := range targets {
		switch strings.ToLower(t) {
		case "all", "dev", "ci":
			for _, l := range e.Stack.Names() {
				add(l)
			}
		}
		for layer, fn := range e.Graph.Target {
			if strings.EqualFold(fn, t) {
				add(layer)
			}
		}
	}
	var out []string
	for _, l := range e.Stack.Names() {
		if want[l] {
			out = append(out, l)
		}
	}
	return out
}

// Results are the outcomes of the layers of this run in requires order;
// layers of the run that never started are listed as not started.
func (e *Engine) Results(runLayers []string) []Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Result
	for _, l := range e.Stack.Names() {
		if r, ok := e.results[l]; ok {
			out = append(out, *r)
		} else if slices.Contains(runLayers, l) {
			out = append(out, Result{Layer: l, Action: NotStarted})
		}
	}
	return out
}

// ResultsFile is where the last run's results are kept, relative to the
// repository (ci reads it for its reports).
const ResultsFile = ".cache/run/results.json"

// Finish ends a run of the given Mage targets: it releases the lock, prints
// the summary table, keeps the results in ResultsFile and turns err into
// one error that names the failed and the not started layers.
func (e *Engine) Finish(err error, targets []string) error {
	e.Close()
	results := e.Results(e.RunLayers(targets))
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
	var failed, notStarted []string
	for _, r := range results {
		switch r.Action {
		case Failed:
			failed = append(failed, r.Layer)
		case NotStarted:
			notStarted = append(notStarted, r.Layer)
		}
	}
	if e.prepareErr != nil {
		// Printed in full when it happened; every dependant repeats it.
		return fmt.Errorf("the run could not start: %s", firstLine(e.prepareErr.Error()))
	}
	if len(failed) == 0 {
		return err
	}
	msg := "failed: " + strings.Join(failed, ", ")
	if len(notStarted) > 0 {
		msg += "; not started: " + strings.Join(notStarted, ", ")
	}
	return fmt.Errorf("%s (the diagnosis is above)", msg)
}

// ReadResults reads the results a run kept in the repository at repo.
func ReadResults(repo string) ([]Result, error) {
	b, err := os.ReadFile(filepath.Join(repo, ResultsFile))
	if err != nil {
		return nil, err
	}
	var rs []Result
	return rs, json.Unmarshal(b, &rs)
}

// PrintSummary prints the table of results.
func PrintSummary(results []Result) {
	if len(results) == 0 {
		return
	}
	var rows [][]string
	for _, r := range results {
		d := "-"
		if r.Action != NotStarted {
			d = ui.Round(r.Duration).String()
		}
		rows = append(rows, []string{r.Layer, string(r.Action), d, oneLine(r.Detail)})
	}
	ui.Table([]string{"LAYER", "ACTION", "TIME", "DETAIL"}, rows)
}

// skaffoldReason is the last error Skaffold or Helm printed, on one line
// (": UPGRADE FAILED: post-upgrade hooks failed: job kratos-migrate
// failed: DeadlineExceeded"), or "" when there is none.
func skaffoldReason(err error) string {
	var re *run.Error
	if !errors.As(err, &re) {
		return ""
	}
	lines := strings.Split(re.Output, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		_, msg, ok := strings.Cut(lines[i], "Error: ")
		if !ok {
			continue
		}
		for _, more := range lines[i+1:] {
			if m, ok := strings.CutPrefix(strings.TrimSpace(more), "* "); ok {
				msg += " " + m
			}
		}
		return ": " + oneLine(msg)
	}
	return ""
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Where says how to reach what a run deployed: the platform's entry point
// and the cluster's kubeconfig.
func (e *Engine) Where() []string {
	kc := e.kubeconfig
	t, _ := tools.Lookup("kubectl")
	kubectl := e.Tools.Path(t)
	inspect := fmt.Sprintf("cluster:  KUBECONFIG=%s %s get pods -A", kc, kubectl)
	switch e.Cluster.Name() {
	case config.ClusterSim:
		return []string{"open:     nothing: no container runs in a simulation (the objects are real, see below)", inspect}
	case config.ClusterKind:
		return []string{"open:     http://localhost/ (nginx-external: / frontend, /api/backend/ alt-backend, /api/auth/ auth-service, /ory/ Kratos, /nginx-health nginx)",
			"grafana:  KUBECONFIG=" + kc + " " + kubectl + " -n alt-observability port-forward svc/monitoring-grafana 3000", inspect}
	default:
		return []string{"open:     the nginx-external Service in alt-ingress (kubectl -n alt-ingress get svc nginx-external)", inspect}
	}
}

// CopyPlatform copies what a run deploys (the Skaffold files, the charts
// and the Mage targets that hold the graph) from the repository at repo
// into dir, where targets run against a cluster of their own (ci, bench,
// tests).
func CopyPlatform(repo, dir string) error {
	for _, sub := range []string{"skaffold", "charts", "magefiles"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join(repo, sub))); err != nil {
			return err
		}
	}
	return nil
}

// FindRepo returns the repository root: the nearest folder at or above the
// working directory that holds skaffold/skaffold.yaml and magefiles/.
func FindRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, stack.RootFile)); err == nil {
			if _, err := os.Stat(filepath.Join(d, "magefiles")); err == nil {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s with magefiles/ at or above %s; run from the repository", stack.RootFile, dir)
		}
	}
}
