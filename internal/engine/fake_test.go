package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/ui"
	"github.com/magefile/mage/mg"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/object"
)

// world is a fake cluster with Helm and Skaffold in front of it: the
// engine's commander, clusterState and helmReleases at once, so what
// `skaffold deploy` changes the health checks see. `skaffold deploy -m L`
// installs a new revision of every release of layer L, each owning one
// Deployment named after it. Every command is recorded.
type world struct {
	mu       sync.Mutex
	stack    *stack.Stack
	profile  string
	records  map[string]Record
	history  map[string][]Record
	releases map[string]*HelmRelease // namespace/name
	notReady map[string]string       // Deployment name → why it is not ready
	fail     map[string]error        // command prefix → error
	block    map[string]bool         // skaffold deploy -m layer: wait for ctx to end
	cmds     []string
	dirs     map[string]string // layer → folder its skaffold deploy ran in
	started  chan string       // layers whose skaffold deploy started
}

func newWorld(t *testing.T) *world {
	s, err := stack.Load(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	return &world{stack: s, profile: "dev", records: map[string]Record{}, releases: map[string]*HelmRelease{},
		notReady: map[string]string{}, fail: map[string]error{}, dirs: map[string]string{}, block: map[string]bool{}, started: make(chan string, 16)}
}

func repoRoot(t *testing.T) string {
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, stack.RootFile)); err == nil {
			return d
		}
	}
	t.Fatal("no repository above " + dir)
	return ""
}

func (w *world) Run(ctx context.Context, name string, args ...string) error {
	_, err := w.Output(ctx, name, args...)
	return err
}

// RunIn records where skaffold deploy ran, by layer.
func (w *world) RunIn(ctx context.Context, dir, name string, args ...string) error {
	if i := slices.Index(args, "-m"); i >= 0 {
		w.mu.Lock()
		w.dirs[args[i+1]] = dir
		w.mu.Unlock()
	}
	return w.Run(ctx, name, args...)
}

func (w *world) Output(ctx context.Context, name string, args ...string) (string, error) {
	line := name + " " + strings.Join(args, " ")
	w.mu.Lock()
	w.cmds = append(w.cmds, line)
	var err error
	for prefix, e := range w.fail {
		if strings.HasPrefix(line, prefix) {
			err = e
		}
	}
	w.mu.Unlock()
	if name != "skaffold" || args[0] != "deploy" {
		return "", err
	}
	layer := args[slices.Index(args, "-m")+1]
	w.started <- layer
	if w.block[layer] {
		<-ctx.Done()
		return "", fmt.Errorf("skaffold: %w", ctx.Err())
	}
	if err != nil {
		return "", err
	}
	w.install(layer)
	return "", nil
}

// install puts a new revision of every release of a layer in the cluster.
func (w *world) install(layer string) {
	v, _ := w.stack.Layer(layer).View(w.profile, func(string) string { return "off" })
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range v.Releases {
		key := r.Namespace + "/" + r.Name
		rev := 1
		if old := w.releases[key]; old != nil {
			rev = old.Revision + 1
		}
		w.releases[key] = &HelmRelease{Name: r.Name, Namespace: r.Namespace, Revision: rev, Status: "deployed",
			Objects: []object.ObjMetadata{{Name: r.Name, Namespace: r.Namespace, GroupKind: schema.GroupKind{Group: "apps", Kind: "Deployment"}}}}
	}
}

func (w *world) ran(prefix string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.cmds {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (w *world) Records(context.Context) (map[string]Record, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]Record{}
	for k, v := range w.records {
		out[k] = v
	}
	return out, nil
}

func (w *world) SaveRecord(ctx context.Context, layer string, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.records[layer] = r
	if w.history == nil {
		w.history = map[string][]Record{}
	}
	w.history[layer] = append([]Record{r}, w.history[layer]...)
	return nil
}

func (w *world) History(_ context.Context, layer string) ([]Record, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Record(nil), w.history[layer]...), nil
}

func (w *world) ForgetHistory(_ context.Context, layer string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.history, layer)
	return nil
}

func (w *world) ForgetRecord(_ context.Context, layer string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.records, layer)
	return nil
}

func (w *world) Release(_ context.Context, name, namespace string) (*HelmRelease, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r := w.releases[namespace+"/"+name]; r != nil {
		c := *r
		return &c, nil
	}
	return nil, nil
}

func (w *world) RecoverPending(_ context.Context, name, namespace string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.releases[namespace+"/"+name]
	if r == nil || !strings.HasPrefix(r.Status, "pending-") {
		return "", nil
	}
	r.Status, r.Revision = "deployed", r.Revision-1
	return fmt.Sprintf("release %s/%s was left pending", namespace, name), nil
}

func (w *world) Check(_ context.Context, ids []object.ObjMetadata) ([]Unhealthy, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var bad []Unhealthy
	for _, id := range ids {
		if why, ok := w.notReady[id.Name]; ok {
			bad = append(bad, Unhealthy{ID: id, Status: "InProgress", Message: why})
		}
	}
	return bad, nil
}

func (w *world) Wait(ctx context.Context, ids []object.ObjMetadata) ([]Unhealthy, error) {
	bad, err := w.Check(ctx, ids)
	if len(bad) > 0 {
		<-ctx.Done() // not ready until the budget ends
	}
	return bad, err
}

func (w *world) Diagnose(_ context.Context, bad []Unhealthy) string {
	return fmt.Sprintf("   diagnosis: %s is not ready: %s\n", bad[0].ID.Name, bad[0].Message)
}

type fakeCluster struct{}

func (fakeCluster) Name() string                           { return config.ClusterSim }
func (fakeCluster) Ensure(context.Context) (string, error) { return "", nil }
func (fakeCluster) Kubeconfig() string                     { return "" }

// run is one run of the engine against w, prepared, as a Mage invocation
// of the given command line would make it.
func (w *world) run(t *testing.T, args ...string) *Engine {
	t.Helper()
	g, err := stack.MageGraph(filepath.Join(w.stack.Repo, "magefiles"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Profile: w.profile, Cluster: config.ClusterSim, LayerTimeout: 300 * time.Millisecond}
	e := newEngine(w.stack.Repo, cfg, w.stack, g, args)
	e.cmd, e.state, e.rel, e.Cluster = w, w, w, fakeCluster{}
	e.Env["ALT_CERT_MANAGER"] = "off"
	e.images = e.placeholderImages()
	e.artifacts = filepath.Join(t.TempDir(), "build-artifacts.json")
	e.prepareOnce.Do(func() {})
	return e
}

// mage runs the layer targets the way mage does: each layer after its
// needs (mg.CtxDeps, each once per invocation: runID makes the invocation
// unique), a failed need failing its dependants; then finishes the run.
func mageRun(e *Engine, runID string, layers ...string) error {
	var target func(ctx context.Context, runID, layer string) error
	target = func(ctx context.Context, runID, layer string) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("%v", v)
			}
		}()
		var deps []any
		for _, n := range e.Graph.Needs[layer] {
			deps = append(deps, mg.F(target, runID, n))
		}
		mg.CtxDeps(ctx, deps...)
		return e.Deploy(ctx, layer)
	}
	var deps []any
	for _, l := range layers {
		deps = append(deps, mg.F(target, runID, l))
	}
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("%v", v)
			}
		}()
		mg.CtxDeps(context.Background(), deps...)
	}()
	return e.Finish(err)
}

var runs int

func (w *world) deployAll(t *testing.T) (*Engine, error) {
	e := w.run(t, "all")
	runs++
	return e, mageRun(e, fmt.Sprint(t.Name(), runs), e.Stack.Names()...)
}

func actions(e *Engine) map[string]Action {
	m := map[string]Action{}
	for _, r := range e.Results(e.Stack.Names()) {
		m[r.Layer] = r.Action
	}
	return m
}

func quiet(t *testing.T) *bytes.Buffer {
	var b bytes.Buffer
	ui.SetOutput(&b)
	t.Cleanup(func() { ui.SetOutput(os.Stderr) })
	return &b
}

func TestColdRunDeploysEveryLayerThenSkipsThem(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	e, err := w.deployAll(t)
	if err != nil {
		t.Fatal(err)
	}
	for l, a := range actions(e) {
		if a != Deployed {
			t.Errorf("%s: %s", l, a)
		}
	}
	if n := w.ran("skaffold deploy"); n != len(e.Stack.Names()) {
		t.Errorf("%d skaffold deploys, want one per layer", n)
	}
	for _, l := range e.Stack.Layers {
		if want := filepath.Join(e.Repo, "skaffold", l.Dir); w.dirs[l.Name] != want {
			t.Errorf("%s: skaffold deploy ran in %q, want its own folder %s", l.Name, w.dirs[l.Name], want)
		}
	}
	var steps []string
	for _, s := range e.results["alt-operations"].Steps {
		steps = append(steps, s.Step)
	}
	if got := strings.Join(steps, ","); got != "check,render,deploy,verify,record" {
		t.Errorf("timed steps %s", got)
	}
	w.cmds = nil
	e, err = w.deployAll(t)
	if err != nil {
		t.Fatal(err)
	}
	for l, a := range actions(e) {
		if a != Unchanged {
			t.Errorf("second run: %s: %s", l, a)
		}
	}
	if len(w.cmds) != 0 {
		t.Errorf("a no-op run ran %v", w.cmds)
	}
}

func TestWhatChangedOrBrokeIsRedeployedAlone(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	if _, err := w.deployAll(t); err != nil {
		t.Fatal(err)
	}
	rec := w.records["alt-operations"]
	in := Inputs{}
	for k, v := range rec.Inputs {
		in[k] = v
	}
	in["file:skaffold/08-operations/skaffold.yaml"] = "old"
	rec.Inputs, rec.Digest = in, "old"
	w.records["alt-operations"] = rec
	delete(w.releases, "alt-auth/kratos")
	e, err := w.deployAll(t)
	if err != nil {
		t.Fatal(err)
	}
	got := actions(e)
	for l, want := range map[string]Action{"alt-operations": Deployed, "alt-auth-platform": Deployed,
		"alt-foundation": Unchanged, "alt-core-services": Unchanged, "alt-application": Unchanged} {
		if got[l] != want {
			t.Errorf("%s: %s, want %s", l, got[l], want)
		}
	}
	if r := e.results["alt-operations"]; !strings.Contains(r.Detail, "changed: file:skaffold/08-operations/skaffold.yaml") {
		t.Errorf("the reason does not name the changed input: %q", r.Detail)
	}
	if r := e.results["alt-auth-platform"]; !strings.Contains(r.Detail, "release alt-auth/kratos is not installed") {
		t.Errorf("the reason does not name the missing release: %q", r.Detail)
	}
}

func TestFailedLayerStopsItsDependantsOnly(t *testing.T) {
	out := quiet(t)
	w := newWorld(t)
	w.fail["skaffold deploy -f skaffold.yaml -m alt-core-services"] = errors.New("exit status 1")
	e, err := w.deployAll(t)
	if err == nil {
		t.Fatal("the run succeeded with a failing layer")
	}
	got := actions(e)
	for l, want := range map[string]Action{"alt-foundation": Deployed, "alt-infrastructure": Deployed,
		"alt-auth-platform": Deployed, "alt-operations": Deployed, "alt-core-services": Failed,
		"alt-application": NotStarted, "alt-processing": NotStarted} {
		if got[l] != want {
			t.Errorf("%s: %s, want %s", l, got[l], want)
		}
	}
	if want := "failed: alt-core-services; not started: alt-application, alt-processing"; !strings.Contains(err.Error(), want) {
		t.Errorf("run error %q, want %q", err, want)
	}
	if _, ok := w.records["alt-core-services"]; ok {
		t.Error("the failed layer kept a record")
	}
	if !strings.Contains(out.String(), "layer alt-core-services (skaffold/04-core-services/skaffold.yaml) failed") {
		t.Errorf("no failure heading naming the layer file:\n%s", out)
	}
}

func TestObjectNotReadyIsDiagnosedWithinTheBudget(t *testing.T) {
	out := quiet(t)
	w := newWorld(t)
	w.notReady["alt-backend"] = "Deployment does not have minimum availability"
	start := time.Now()
	e, err := w.deployAll(t)
	if err == nil {
		t.Fatal("the run succeeded with alt-backend not ready")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s with a budget of 300ms", d)
	}
	r := e.results["alt-core-services"]
	if r.Action != Failed || !strings.Contains(r.Detail, "not ready within its budget of 300ms (ALT_LAYER_TIMEOUT): Deployment alt-apps/alt-backend") {
		t.Errorf("result %+v", r)
	}
	if !strings.Contains(out.String(), "diagnosis: alt-backend is not ready: Deployment does not have minimum availability") {
		t.Errorf("the diagnosis is not printed:\n%s", out)
	}
}

func TestChartThatDoesNotRenderAppliesNothing(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	w.fail["helm template monitoring"] = errors.New("values don't meet the specifications of the schema")
	e, err := w.deployAll(t)
	if err == nil {
		t.Fatal("succeeded")
	}
	if w.ran("skaffold deploy -f skaffold.yaml -m alt-operations") != 0 {
		t.Error("skaffold deploy ran for a layer whose chart does not render")
	}
	if r := e.results["alt-operations"]; r.Detail != "its charts do not render; nothing was applied" {
		t.Errorf("detail %q", r.Detail)
	}
}

func TestPendingReleaseIsRecoveredBeforeDeploying(t *testing.T) {
	out := quiet(t)
	w := newWorld(t)
	if _, err := w.deployAll(t); err != nil {
		t.Fatal(err)
	}
	w.releases["alt-apps/alt-backend"].Status = "pending-upgrade"
	w.releases["alt-apps/alt-backend"].Revision++
	e, err := w.deployAll(t)
	if err != nil {
		t.Fatal(err)
	}
	if a := actions(e)["alt-core-services"]; a != Deployed {
		t.Errorf("alt-core-services: %s", a)
	}
	if !strings.Contains(out.String(), "release alt-apps/alt-backend was left pending") {
		t.Error("the recovery is not reported")
	}
}

// Losing the lock in the middle of a layer stops its skaffold (its context
// ends), fails it saying why, starts nothing more and records nothing.
func TestLockLossStopsTheRun(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	w.block["alt-infrastructure"] = true
	e := w.run(t, "all")
	e.Cfg.LayerTimeout = time.Minute
	go func() {
		for l := range w.started {
			if l == "alt-infrastructure" {
				e.loseLock(fmt.Errorf("%w: Lease kube-system/alt-platform-deploy is now held by ops@laptop", ErrLockLost))
				return
			}
		}
	}()
	start := time.Now()
	err := mageRun(e, t.Name(), e.Stack.Names()...)
	if err == nil || !strings.Contains(err.Error(), "now held by ops@laptop") {
		t.Fatalf("run error: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the run went on for %s after losing the lock", d)
	}
	r := e.results["alt-infrastructure"]
	if r.Action != Failed || !strings.HasPrefix(r.Detail, "stopped: the deploy lock was lost") {
		t.Errorf("alt-infrastructure: %+v", r)
	}
	if _, ok := w.records["alt-infrastructure"]; ok {
		t.Error("a layer was recorded after the lock was lost")
	}
	if n := w.ran("skaffold deploy"); n != 2 {
		t.Errorf("%d skaffold deploys; want 01 and 02 only", n)
	}
}

// A layer asked for by two targets (named on the command line after a
// target that needed it) is deployed once; both get its outcome.
func TestLayerDeploysOncePerRun(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	e := w.run(t, "foundation", "operations", "foundation")
	if err := mageRun(e, t.Name()+"a", "alt-foundation"); err != nil {
		t.Fatal(err)
	}
	e.targets.finished = false
	if err := e.Deploy(context.Background(), "alt-foundation"); err != nil {
		t.Fatal(err)
	}
	if n := w.ran("skaffold deploy -f skaffold.yaml -m alt-foundation"); n != 1 {
		t.Errorf("alt-foundation deployed %d times", n)
	}
}

func TestTheLastNamedTargetOrTheFirstFailureEndsTheRun(t *testing.T) {
	quiet(t)
	g, err := stack.MageGraph(filepath.Join(repoRoot(t), "magefiles"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args  []string
		named int
	}{
		{[]string{"foundation", "operations"}, 2},
		{[]string{"-v", "-t", "5m", "Foundation", "sim:up", "plan", "all"}, 2},
		{[]string{"-l"}, 0},
		{[]string{"dev"}, 1},
	} {
		if n := deployingTargets(g, tt.args); n != tt.named {
			t.Errorf("%v: %d deploying targets, want %d", tt.args, n, tt.named)
		}
	}
	tg := targets{named: 2}
	if tg.end(nil) {
		t.Error("the first of two named targets ended the run")
	}
	if !tg.end(nil) {
		t.Error("the last named target did not end the run")
	}
	tg = targets{named: 3}
	if !tg.end(errors.New("failed")) || tg.end(nil) {
		t.Error("a failure must end the run, once")
	}
	// Nothing named (a bench, a test): the first top-level target ends it.
	tg = targets{}
	if !tg.end(nil) {
		t.Error("an unnamed target did not end the run")
	}
	ctx, top := Enter(context.Background())
	if _, nested := Enter(ctx); !top || nested {
		t.Errorf("Enter: top %v, nested %v", top, nested)
	}
}

// A layer that will deploy whatever happens (no record, or changed inputs)
// is rendered in the background at the start of the run, once; a layer
// whose digest matches its record is not, and renders in its own step
// only when its check finds it unhealthy.
func TestChangedLayersRenderBeforeTheirTurn(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	if _, err := w.deployAll(t); err != nil {
		t.Fatal(err)
	}
	rec := w.records["alt-operations"]
	rec.Digest = "old"
	w.records["alt-operations"] = rec
	delete(w.releases, "alt-auth/kratos")
	w.cmds = nil
	e := w.run(t, "all")
	e.prerender()
	if e.prerendered("alt-operations") == nil {
		t.Error("the changed layer was not rendered ahead")
	}
	for _, l := range []string{"alt-foundation", "alt-auth-platform", "alt-application"} {
		if e.prerendered(l) != nil {
			t.Errorf("%s, unchanged by its digest, was rendered ahead", l)
		}
	}
	runs++
	if err := mageRun(e, fmt.Sprint(t.Name(), runs), e.Stack.Names()...); err != nil {
		t.Fatal(err)
	}
	if n := w.ran("helm template monitoring"); n != 1 {
		t.Errorf("monitoring rendered %d times, want once", n)
	}
	if n := w.ran("helm template kratos"); n != 1 {
		t.Errorf("kratos (its release gone, digest unchanged) rendered %d times, want once, in its own step", n)
	}
	if a := actions(e); a["alt-operations"] != Deployed || a["alt-auth-platform"] != Deployed || a["alt-core-services"] != Unchanged {
		t.Errorf("actions %v", a)
	}
}

// A chart that does not render fails its layer in the layer's own render
// step, before anything of it is applied, also when it was rendered ahead.
func TestChartRenderedAheadThatDoesNotRenderAppliesNothing(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	w.fail["helm template monitoring"] = errors.New("values don't meet the specifications of the schema")
	e := w.run(t, "all")
	e.prerender()
	if e.prerendered("alt-operations") == nil {
		t.Fatal("a cold run renders every layer ahead")
	}
	runs++
	if err := mageRun(e, fmt.Sprint(t.Name(), runs), e.Stack.Names()...); err == nil {
		t.Fatal("succeeded")
	}
	if w.ran("skaffold deploy -f skaffold.yaml -m alt-operations") != 0 {
		t.Error("skaffold deploy ran for a layer whose chart does not render")
	}
	if r := e.results["alt-operations"]; r.Action != Failed || r.Detail != "its charts do not render; nothing was applied" {
		t.Errorf("%s: %q", r.Action, r.Detail)
	}
	if a := actions(e)["alt-processing"]; a != Deployed {
		t.Errorf("alt-processing, independent of it: %s", a)
	}
}
