package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/ui"
	"sigs.k8s.io/cli-utils/pkg/object"
)

// The world a layer is deployed into, behind three small interfaces so
// that each step can be tested on a fake one (fake_test.go). *Kube and
// *run.Runner are the real ones.
type (
	// commander runs the tools (helm, skaffold).
	commander interface {
		Run(ctx context.Context, name string, args ...string) error
		RunIn(ctx context.Context, dir, name string, args ...string) error
		Output(ctx context.Context, name string, args ...string) (string, error)
	}
	// clusterState is the engine's own record of each layer's last
	// verified deploy.
	clusterState interface {
		Records(ctx context.Context) (map[string]Record, error)
		SaveRecord(ctx context.Context, layer string, r Record) error
		ForgetRecord(ctx context.Context, layer string) error
		// History is the layer's verified deploys, newest first (the
		// last SaveRecord first); ForgetRecord keeps it.
		History(ctx context.Context, layer string) ([]Record, error)
		ForgetHistory(ctx context.Context, layer string) error
	}
	// helmReleases are the Helm releases and the health of their objects.
	helmReleases interface {
		Release(ctx context.Context, name, namespace string) (*HelmRelease, error)
		RecoverPending(ctx context.Context, name, namespace string) (string, error)
		Check(ctx context.Context, ids []object.ObjMetadata) ([]Unhealthy, error)
		Wait(ctx context.Context, ids []object.ObjMetadata) ([]Unhealthy, error)
		Diagnose(ctx context.Context, bad []Unhealthy) string
	}
)

var (
	_ clusterState = (*Kube)(nil)
	_ helmReleases = (*Kube)(nil)
)

// layerRun is one layer's deploy in this run: it happens once, however
// many targets ask for it, and every one of them gets its outcome.
type layerRun struct {
	done chan struct{}
	err  error
}

// budget is the time one layer may take, deploy and verification included.
func (e *Engine) budget() time.Duration { return e.Cfg.LayerTimeout }

// Deploy deploys one layer unless it is unchanged and healthy, then
// verifies it and records its digest. A layer is deployed once per run:
// a later call (a target named on the command line after another that
// needed it) waits for and returns the first call's outcome.
func (e *Engine) Deploy(ctx context.Context, name string) error {
	e.mu.Lock()
	lr, seen := e.layers[name]
	if !seen {
		lr = &layerRun{done: make(chan struct{})}
		e.layers[name] = lr
	}
	e.mu.Unlock()
	if seen {
		<-lr.done
		return lr.err
	}
	defer close(lr.done)
	lr.err = e.deployOnce(ctx, name)
	return lr.err
}

func (e *Engine) deployOnce(ctx context.Context, name string) error {
	if err := e.Prepare(ctx); err != nil {
		// Nothing of this layer was tried; the error was printed in full.
		e.setResult(&Result{Layer: name, Action: NotStarted, Detail: "the run could not start: " + firstLine(err.Error())})
		return err
	}
	if cause := context.Cause(e.runCtx); cause != nil {
		// The run lost its lock: no layer starts after that.
		e.setResult(&Result{Layer: name, Action: NotStarted, Detail: firstLine(cause.Error())})
		return fmt.Errorf("layer %s not started: %w", name, cause)
	}
	ctx, stop := e.bind(ctx)
	defer stop()
	start := time.Now()
	res := &Result{Layer: name, Started: start.Sub(e.begin)}
	err := e.layer(ctx, name, res)
	res.Duration = time.Since(start)
	if err != nil {
		res.Action = Failed
		if res.Detail == "" {
			res.Detail = firstLine(err.Error())
		}
		err = fmt.Errorf("layer %s: %w", name, err)
	}
	e.setResult(res)
	return err
}

func (e *Engine) setResult(r *Result) {
	e.mu.Lock()
	e.results[r.Layer] = r
	e.mu.Unlock()
}

// bind is ctx, cancelled also when the run is (it lost the lock), with
// the run's reason as its cause.
func (e *Engine) bind(ctx context.Context) (context.Context, func()) {
	c, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(e.runCtx, func() { cancel(context.Cause(e.runCtx)) })
	return c, func() { stop(); cancel(nil) }
}

// layer is the story of one layer: decide, render, apply, verify, record.
func (e *Engine) layer(ctx context.Context, name string, res *Result) error {
	l := e.Stack.Layer(name)
	if l == nil {
		return fmt.Errorf("no such layer in %s", stack.RootFile)
	}
	v, err := l.View(e.Cfg.Profile, func(k string) string { return e.Env[k] })
	if err != nil {
		return err
	}
	t0 := time.Now()
	updated, err := e.syncSecrets(ctx, v)
	if len(e.layerSecrets(v)) > 0 {
		res.took("secrets", t0)
	}
	if err != nil {
		res.Detail = "its Secrets could not be written: " + err.Error()
		return err
	}
	t0 = time.Now()
	step := ui.Start("%s (%s): check", name, l.Dir)
	d, err := e.decide(ctx, v)
	res.took("check", t0)
	if err != nil {
		step.Fail()
		return err
	}
	if len(updated) > 0 && !d.Deploy {
		// A changed value reaches what reads it at deploy (the roles Job
		// sets the new passwords).
		d.Deploy, d.Reason = true, "Secrets updated from "+e.secrets.file+": "+shortList(updated, 4)
	}
	if !d.Deploy {
		res.Action, res.Detail = Unchanged, "digest "+d.Inputs.Digest()
		step.Skip("unchanged (digest " + d.Inputs.Digest() + ", every object healthy)")
		return nil
	}
	step.Skip("deploy: " + d.Reason)
	if err := e.render(ctx, v, res); err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, e.budget())
	defer cancel()
	f := e.applyAndVerify(lctx, v, res)
	if f.ok() {
		t0 = time.Now()
		defer res.took("record", t0)
		return e.record(ctx, v, d, res)
	}
	// Forget the old record: a half-applied layer must be redeployed.
	e.state.ForgetRecord(context.WithoutCancel(ctx), name)
	return e.fail(ctx, lctx, v, f, res)
}

// render checks that every chart of the layer renders before anything is
// applied: a chart that does not fails here, its releases and record left
// as they are.
func (e *Engine) render(ctx context.Context, v *stack.View, res *Result) error {
	defer res.took("render", time.Now())
	step := ui.Start("%s: render its charts (helm template)", v.Layer.Name)
	if err := e.renderVerdict(ctx, v); err != nil {
		step.Fail()
		res.Detail = "its charts do not render; nothing was applied"
		ui.Failure(fmt.Sprintf("layer %s (%s) failed before deploying", v.Layer.Name, v.Layer.File), err.Error())
		return err
	}
	step.Done()
	return nil
}

// failure is what went wrong in apply and verify; all zero: nothing.
type failure struct {
	deployErr error       // skaffold deploy failed
	err       error       // another step failed
	bad       []Unhealthy // objects not ready at the end of verify
}

func (f failure) ok() bool { return f.deployErr == nil && f.err == nil && len(f.bad) == 0 }

// applyAndVerify recovers releases left pending, runs skaffold deploy and
// waits until every object of the layer's releases is ready.
func (e *Engine) applyAndVerify(ctx context.Context, v *stack.View, res *Result) failure {
	name := v.Layer.Name
	t0 := time.Now()
	step := ui.Start("%s: skaffold deploy -p %s (budget %s)", name, e.Cfg.Profile, e.budget())
	if err := e.recoverPending(ctx, v); err != nil {
		step.Fail()
		return failure{err: err}
	}
	artifacts, err := e.layerArtifacts(v)
	if err != nil {
		step.Fail()
		return failure{err: err}
	}
	err = e.cmd.RunIn(ctx, filepath.Join(e.Repo, filepath.Dir(v.Layer.File)), "skaffold", e.deployArgs(v.Layer, artifacts)...)
	res.took("deploy", t0)
	if err != nil {
		step.Fail()
		return failure{deployErr: err}
	}
	step.Done()
	return e.verify(ctx, v, res)
}

// verify waits, within ctx, until every object of the layer's releases is
// Current (Jobs complete), and times it as the result's verify step.
func (e *Engine) verify(ctx context.Context, v *stack.View, res *Result) failure {
	t0 := time.Now()
	step := ui.Start("%s: verify", v.Layer.Name)
	ids, err := e.layerObjects(ctx, v)
	var bad []Unhealthy
	if err == nil {
		bad, err = e.rel.Wait(ctx, ids)
	}
	res.took("verify", t0)
	if err != nil || len(bad) > 0 {
		step.Fail()
		return failure{err: err, bad: bad}
	}
	step.Done()
	return failure{}
}

func (e *Engine) recoverPending(ctx context.Context, v *stack.View) error {
	for _, r := range v.Releases {
		did, err := e.rel.RecoverPending(ctx, r.Name, r.Namespace)
		if err != nil {
			return err
		}
		if did != "" {
			ui.Warn("%s", did)
		}
	}
	return nil
}

// record keeps the digest of a verified layer, so that the next run skips
// it while nothing changes.
func (e *Engine) record(ctx context.Context, v *stack.View, d decision, res *Result) error {
	rec := Record{Digest: d.Inputs.Digest(), Profile: e.Cfg.Profile, Time: time.Now().UTC().Format(time.RFC3339), Inputs: d.Inputs}
	revs, err := e.revisions(ctx, v)
	if err != nil {
		return fmt.Errorf("verified, but reading its Helm revisions failed: %w", err)
	}
	rec.Revisions = revs
	if err := e.state.SaveRecord(ctx, v.Layer.Name, rec); err != nil {
		return fmt.Errorf("verified, but recording its digest failed: %w", err)
	}
	res.Action, res.Detail = Deployed, d.Reason
	return nil
}

// fail explains a failed layer on one screen: why (budget, cancelled, lost
// lock, skaffold's own reason), the objects not ready and their diagnosis,
// the cluster's logs; res gets the one-line detail of the summary.
func (e *Engine) fail(ctx, lctx context.Context, v *stack.View, f failure, res *Result) error {
	dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if len(f.bad) == 0 {
		if ids, err := e.layerObjects(dctx, v); err == nil {
			f.bad, _ = e.rel.Check(dctx, ids)
		}
	}
	var why strings.Builder
	why.WriteString(e.failReason(ctx, lctx, f))
	if len(f.bad) > 0 {
		res.Detail = fmt.Sprintf("%s: %s", why.String(), f.bad[0])
		fmt.Fprintf(&why, "\n%s", e.rel.Diagnose(dctx, f.bad))
	}
	switch {
	case ctx.Err() != nil:
		// Cancelled: what skaffold printed on its way out explains nothing.
	case f.deployErr != nil && lctx.Err() != nil && len(f.bad) > 0:
		fmt.Fprintf(&why, "\nskaffold deploy was stopped at the budget; `mage -v` streams its output")
	case f.deployErr != nil:
		fmt.Fprintf(&why, "\n%v", f.deployErr)
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
	ui.Failure(fmt.Sprintf("layer %s (%s) failed", v.Layer.Name, v.Layer.File), why.String())
	return errors.New(res.Detail)
}

// failReason is the first line of a failure's story.
func (e *Engine) failReason(ctx, lctx context.Context, f failure) string {
	switch {
	case errors.Is(context.Cause(ctx), ErrLockLost):
		return "stopped: " + context.Cause(ctx).Error()
	case lctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		return fmt.Sprintf("not ready within its budget of %s (ALT_LAYER_TIMEOUT)", e.budget())
	case ctx.Err() != nil:
		return "cancelled"
	case f.deployErr != nil:
		return "skaffold deploy failed" + skaffoldReason(f.deployErr)
	case f.err != nil:
		return f.err.Error()
	}
	return "objects not ready"
}

// deployArgs are skaffold's arguments to deploy one layer: its own file,
// run in its folder (where its relative paths resolve), not the root
// config with -m. Skaffold reads every config it is given, and each `skaffold
// filter` it runs as Helm's post-renderer (one per release) reads them again
// and runs `helm version` once per config: given the root, seven times per
// release. -m names the layer all the same, for the reader. No
// --default-repo: the references of the artifacts file are whole (pushed by
// the build, or promoted from staging's release file) and are deployed byte
// for byte.
func (e *Engine) deployArgs(l *stack.Layer, artifacts string) []string {
	return []string{"deploy", "-f", filepath.Base(l.File), "-m", l.Name, "-p", e.Cfg.Profile,
		"--build-artifacts", artifacts, "--status-check=false"}
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
	recs, err := e.state.Records(ctx)
	if err != nil {
		return d, err
	}
	rec, ok := recs[v.Layer.Name]
	switch {
	case !ok:
		d.Reason = "no verified deploy recorded"
		return d, nil
	case rec.Stale != "":
		d.Reason = "stale: " + rec.Stale
		return d, nil
	case rec.Digest != in.Digest():
		d.Reason = "changed: " + shortList(in.Changed(rec.Inputs), 4)
		return d, nil
	}
	if d.Reason, err = e.unhealthy(ctx, v); err != nil || d.Reason != "" {
		return d, err
	}
	d.Deploy = false
	return d, nil
}

// unhealthy says why one of the layer's releases is not as deployed, or "".
func (e *Engine) unhealthy(ctx context.Context, v *stack.View) (string, error) {
	for _, r := range v.Releases {
		hr, err := e.rel.Release(ctx, r.Name, r.Namespace)
		switch {
		case err != nil:
			return "", err
		case hr == nil:
			return fmt.Sprintf("release %s/%s is not installed", r.Namespace, r.Name), nil
		case hr.Status != "deployed":
			return fmt.Sprintf("release %s/%s revision %d is %s", r.Namespace, r.Name, hr.Revision, hr.Status), nil
		}
		bad, err := e.rel.Check(ctx, hr.Objects)
		if err != nil {
			return "", err
		}
		if len(bad) > 0 {
			return fmt.Sprintf("release %s: %s", r.Name, bad[0]), nil
		}
	}
	return "", nil
}

// layerObjects lists the objects of every release of the layer as Helm
// recorded them in their latest revision.
func (e *Engine) layerObjects(ctx context.Context, v *stack.View) ([]object.ObjMetadata, error) {
	var ids []object.ObjMetadata
	for _, r := range v.Releases {
		hr, err := e.rel.Release(ctx, r.Name, r.Namespace)
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

// revisions are the latest Helm revision of each release of the layer.
func (e *Engine) revisions(ctx context.Context, v *stack.View) (map[string]int, error) {
	revs := map[string]int{}
	for _, r := range v.Releases {
		hr, err := e.rel.Release(ctx, r.Name, r.Namespace)
		if err != nil {
			return nil, err
		}
		if hr != nil {
			revs[r.Namespace+"/"+r.Name] = hr.Revision
		}
	}
	return revs, nil
}
