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
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
	"k8s.io/client-go/kubernetes"
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
	// Started is when the layer started, counted from the run's start.
	Started time.Duration `json:"started"`
	Detail  string        `json:"detail"`
	// Steps are the times of its steps: check, render, deploy (skaffold,
	// hooks included), verify, record.
	Steps []Timing `json:"steps,omitempty"`
}

// Timing is the time one step took.
type Timing struct {
	Step     string        `json:"step"`
	Duration time.Duration `json:"duration"`
}

// took records that step ran from start until now.
func (r *Result) took(step string, start time.Time) {
	r.Steps = append(r.Steps, Timing{step, time.Since(start)})
}

// Timings is "check 0.2s, render 0.4s, ...".
func Timings(ts []Timing) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Step+" "+ui.Round(t.Duration).String())
	}
	return strings.Join(parts, ", ")
}

// Engine is one Mage invocation's run against one cluster: it owns the
// configuration, the stack, the cluster, the deploy lock, the layer results
// and the one summary. The Mage targets make it once per process (New) and
// bracket every deploying target with Enter and Exit (run.go).
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

	// The world the layers are deployed into, set by prepare (or a test).
	cmd   commander
	state clusterState
	rel   helmReleases
	// secretsAPI writes the Secrets of staging and prod (secrets.go).
	secretsAPI kubernetes.Interface

	// secrets are the run's Secrets (staging, prod); nil in dev.
	secrets *runSecrets
	// release is what prod deploys: the release file staging wrote.
	release *Release

	prepareOnce sync.Once
	prepareErr  error
	kubeconfig  string
	images      map[string]string
	artifacts   string // build-artifacts file
	lock        *Lock
	// devRun runs skaffold dev for watch (nil: the runner; tests replace it).
	devRun func(ctx context.Context, r *run.Runner, args []string) error

	// The run's own context: cancelled, with the reason, when the run
	// loses the deploy lock.
	runCtx    context.Context
	cancelRun context.CancelCauseFunc

	targets targets
	// prep are the times of the run's preparation: tools, cluster, lock,
	// images; printed with the summary, not inside the first layer's time.
	prep  []Timing
	begin time.Time // the run's start

	mu         sync.Mutex
	results    map[string]*Result
	layers     map[string]*layerRun
	prerenders map[string]*prerendered
}

// New loads the configuration and the stack and validates both; it touches
// no cluster. Every problem found is in the error. args are the command
// line mage was given (os.Args[1:]): the targets named there that deploy
// decide when the run ends and which layers it deploys.
func New(repo string, verbose bool, args []string) (*Engine, error) {
	cfg, cfgErr := config.FromEnvironment()
	s, g, stackErr := stack.LoadAll(repo)
	if err := errors.Join(cfgErr, stackErr); err != nil {
		return nil, err
	}
	// Every chart's local dependency (charts/common) in its charts/
	// folder, where helm and skaffold expect it.
	if err := charts.Vendor(s.Repo); err != nil {
		return nil, err
	}
	r := &run.Runner{Verbose: verbose}
	e := newEngine(s.Repo, cfg, s, g, args)
	e.Runner, e.cmd = r, r
	e.Tools = &tools.Cache{Dir: cfg.ToolsDir, Runner: r}
	var err error
	if e.Cluster, err = newCluster(e); err != nil {
		return nil, err
	}
	return e, nil
}

func newEngine(repo string, cfg *config.Config, s *stack.Stack, g *stack.Graph, args []string) *Engine {
	e := &Engine{Repo: repo, Cfg: cfg, Stack: s, Graph: g, Env: map[string]string{}, begin: time.Now(),
		results: map[string]*Result{}, layers: map[string]*layerRun{}, prerenders: map[string]*prerendered{}}
	e.runCtx, e.cancelRun = context.WithCancelCause(context.Background())
	e.targets.named = deployingTargets(g, args)
	return e
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
	// Bad input first: a Secret the file lacks is named before anything
	// is built or touched.
	if err := e.loadSecrets(e.thisRun()); err != nil {
		return err
	}
	if err := e.loadRelease(e.thisRun()); err != nil {
		return err
	}
	if p, ok := e.Cluster.(preflighter); ok {
		if err := p.Preflight(ctx); err != nil {
			return err
		}
	}
	e.decideCertManager(ctx, true)
	t0 := time.Now()
	step := ui.Start("tools: %s", strings.Join(tools.Deploy, ", "))
	if _, err := e.Tools.Ensure(ctx, tools.Deploy...); err != nil {
		step.Fail()
		return err
	}
	step.Done()
	e.prep = append(e.prep, Timing{"tools", time.Since(t0)})
	t0 = time.Now()
	kubeconfig, err := e.Cluster.Ensure(ctx)
	if err != nil {
		return err
	}
	e.prep = append(e.prep, Timing{"cluster", time.Since(t0)})
	t0 = time.Now()
	e.kubeconfig = kubeconfig
	e.Runner.Env = e.Tools.Env(kubeconfig, e.envList()...)
	k, err := Connect(ctx, kubeconfig, "")
	if err != nil {
		if e.Cfg.Cluster == config.ClusterContext {
			return fmt.Errorf("ALT_KUBE_CONTEXT=%q: %w", e.Cfg.KubeContext, err)
		}
		return err
	}
	e.connect(k)
	if err := e.takeLock(ctx, k); err != nil {
		return err
	}
	if err := e.bindCluster(ctx, k); err != nil {
		return err
	}
	e.prep = append(e.prep, Timing{"connect, lock, profile", time.Since(t0)})
	t0 = time.Now()
	err = e.decideImages(ctx)
	e.prep = append(e.prep, Timing{"images", time.Since(t0)})
	if err == nil {
		e.prerender()
	}
	return err
}

// connect makes k the world the layers are deployed into.
func (e *Engine) connect(k *Kube) { e.state, e.rel, e.secretsAPI = k, k, k.Client }

// takeLock takes the cluster's deploy lock and keeps it until Finish;
// losing it cancels the run.
func (e *Engine) takeLock(ctx context.Context, k *Kube) error {
	e.lock = &Lock{Leases: k.Client.CoordinationV1().Leases(stateNamespace), Self: Self(CommandLine()),
		Duration: lockDuration, Lost: e.loseLock}
	if err := e.lock.Acquire(ctx); err != nil {
		return err
	}
	e.lock.Keep()
	return nil
}

// loseLock stops the run: every layer in flight is cancelled (its tools
// are stopped) and no other starts.
func (e *Engine) loseLock(err error) {
	ui.Failure("this run lost the cluster's deploy lock and stops", err.Error())
	e.cancelRun(err)
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
	if e.release != nil {
		e.promotedImages()
		return nil
	}
	if e.Cluster.Name() == config.ClusterSim {
		e.images = e.placeholderImages()
		ui.Warn("sim cluster: no image is built; every first-party image gets the placeholder tag \"sim\" (containers do not run in a simulation)")
		return nil
	}
	if err := e.standinThirdParty(ctx); err != nil {
		return err
	}
	return e.build(ctx)
}

// layerArtifacts writes the build-artifacts file of one layer: only its own
// images, so Skaffold warns about no image that the layer does not use.
func (e *Engine) layerArtifacts(v *stack.View) (string, error) {
	a := stack.Artifacts{}
	for _, art := range v.Artifacts {
		tag, ok := e.images[art.Image]
		if !ok {
			return "", fmt.Errorf("image %s of %s was not built in this run", art.Image, v.Layer.File)
		}
		a[art.Image] = tag
	}
	path := filepath.Join(filepath.Dir(e.artifacts), fmt.Sprintf("%s-%s-artifacts.json", e.Cfg.Profile, v.Layer.Name))
	return path, a.Write(path)
}

// placeholderImages are the deterministic references of a run that
// builds nothing (stack.Placeholders).
func (e *Engine) placeholderImages() map[string]string {
	return stack.Placeholders(e.Cfg.Profile, e.Stack.Images(e.Cfg.Profile))
}

// Close releases the deploy lock and whatever the cluster keeps for this
// run only (a context's kubeconfig).
func (e *Engine) Close() {
	if e.lock != nil {
		e.lock.Release()
		e.lock = nil
	}
	if c, ok := e.Cluster.(io.Closer); ok {
		if err := c.Close(); err != nil {
			ui.Warn("%v", err)
		}
	}
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
		rows = append(rows, []string{r.Layer, string(r.Action), d, Timings(r.Steps), oneLine(r.Detail)})
	}
	ui.Table([]string{"LAYER", "ACTION", "TIME", "STEPS", "DETAIL"}, rows)
	if tl := Timeline(results, 40); len(tl) > 0 {
		ui.Info("")
		for _, l := range tl {
			ui.Info("%s", l)
		}
	}
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
		return []string{"open:     " + e.EntryURL() + " (nginx-external: / frontend, /api/backend/ alt-backend, /api/auth/ auth-service, /ory/ Kratos, /nginx-health nginx)",
			"grafana:  KUBECONFIG=" + kc + " " + kubectl + " -n alt-observability port-forward svc/monitoring-grafana 3000", inspect}
	default:
		return []string{"open:     the nginx-external Service in alt-ingress (kubectl -n alt-ingress get svc nginx-external)", inspect}
	}
}

// EntryURL is where nginx-external answers on a kind cluster: localhost
// on its mapped host port, over HTTPS where cert-manager is deployed
// (ALT_KIND_HTTPS_PORT, 443 by default; the certificate is the platform
// CA's), else over plain HTTP (ALT_KIND_HTTP_PORT, 80 by default).
func (e *Engine) EntryURL() string {
	scheme, port, std := "http", e.Cfg.KindHTTPPort, 80
	if e.Env["ALT_CERT_MANAGER"] == "on" {
		scheme, port, std = "https", e.Cfg.KindHTTPSPort, 443
	}
	if port == 0 || port == std {
		return scheme + "://localhost/"
	}
	return fmt.Sprintf("%s://localhost:%d/", scheme, port)
}

// CopyPlatform copies what a run deploys (the Skaffold files, the charts,
// the scripts their hooks call, the Mage targets that hold the graph and
// Alt's contract) from the repository at repo into dir, where targets run
// against a cluster of their own (ci, bench, tests).
func CopyPlatform(repo, dir string) error {
	for _, sub := range []string{"skaffold", "charts", "magefiles", stack.ScriptsDir, "docs"} {
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
