package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
)

// renderCheck renders every local chart of a layer with `helm template`,
// with the values files and image values Skaffold would pass, before the
// layer's deploy touches anything. Skaffold installs a layer's releases side
// by side, so a chart that does not render (a values file its
// values.schema.json rejects, a template error, a values.yaml that is not
// YAML) would fail its own release while its siblings get new revisions,
// and the layer's record would be dropped. Failing here names the layer
// file, the release, its chart and values files, and Helm's reason (the
// template and line, or the schema property), and nothing is applied.
//
// Rendering is offline: `lookup` sees no objects, and remote charts (not
// reachable offline; Skaffold fetches them) are not rendered here.
func (e *Engine) renderCheck(ctx context.Context, v *stack.View) error {
	vars := e.templateVars(v)
	errs := make([]error, len(v.Releases))
	var wg sync.WaitGroup
	for i, r := range v.Releases {
		if r.Remote {
			continue
		}
		wg.Go(func() { errs[i] = e.renderRelease(ctx, v, r, vars) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (e *Engine) renderRelease(ctx context.Context, v *stack.View, r stack.Release, vars map[string]string) error {
	sets, err := r.Sets(vars)
	if err != nil {
		return fmt.Errorf("%s: profiles[%s].deploy.helm.releases[%s]: %w", v.Layer.File, v.Profile, r.Name, err)
	}
	if _, err := e.cmd.Output(ctx, "helm", r.TemplateArgs(e.Repo, sets)...); err != nil {
		why := err.Error()
		var re *run.Error
		if errors.As(err, &re) && strings.TrimSpace(re.Output) != "" {
			why = strings.TrimSpace(re.Output)
		}
		values := "no values file"
		if len(r.ValuesFiles) > 0 {
			values = "values " + strings.Join(r.ValuesFiles, ", ")
		}
		return fmt.Errorf("%s: profiles[%s].deploy.helm.releases[%s]: chart %s does not render with %s; nothing of layer %s was applied:\n%s",
			v.Layer.File, v.Profile, r.Name, r.Chart, values, v.Layer.Name, indent(why, "    "))
	}
	return nil
}

// prerendered is the render check of one layer, started before the layer
// itself starts.
type prerendered struct {
	done chan struct{}
	err  error
}

// prerender starts, in the background, the render check of each layer of
// the run that will deploy whatever happens before it: no verified deploy
// recorded, or inputs that differ from the record. Its charts then render
// while the layers it needs deploy, off the run's critical path; its own
// render step only collects the verdict (the layer still fails there,
// before anything of it is applied). Layers are rendered one after another
// in requires order, the first needed first, so that the rendering does not
// crowd the first layers' deploys. A layer whose digest matches its record
// renders in its own step if its check finds it unhealthy.
func (e *Engine) prerender() {
	recs, err := e.state.Records(e.runCtx)
	if err != nil {
		return // each layer renders in its own step
	}
	var views []*stack.View
	for _, name := range e.runLayers() {
		v, err := e.Stack.Layer(name).View(e.Cfg.Profile, func(k string) string { return e.Env[k] })
		if err != nil {
			continue
		}
		in, err := layerInputs(e.Repo, v, e.images, e.Env, e.toolVersions())
		if rec, ok := recs[name]; err != nil || (ok && rec.Digest == in.Digest()) {
			continue
		}
		views = append(views, v)
		e.mu.Lock()
		e.prerenders[name] = &prerendered{done: make(chan struct{})}
		e.mu.Unlock()
	}
	go func() {
		for _, v := range views {
			p := e.prerendered(v.Layer.Name)
			p.err = e.renderCheck(e.runCtx, v)
			close(p.done)
		}
	}()
}

// prerendered is the background render of a layer, or nil.
func (e *Engine) prerendered(layer string) *prerendered {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.prerenders[layer]
}

// renderVerdict is the render check of a layer: the background one when
// it was started (waited for), else one run now.
func (e *Engine) renderVerdict(ctx context.Context, v *stack.View) error {
	p := e.prerendered(v.Layer.Name)
	if p == nil {
		return e.renderCheck(ctx, v)
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// templateVars are the variables Skaffold gives setValueTemplates: the
// run's environment and the layer's images.
func (e *Engine) templateVars(v *stack.View) map[string]string {
	vars := map[string]string{}
	for _, kv := range os.Environ() {
		if k, val, ok := strings.Cut(kv, "="); ok {
			vars[k] = val
		}
	}
	for k, val := range e.Env {
		vars[k] = val
	}
	for _, a := range v.Artifacts {
		ref := e.images[a.Image]
		if ref == "" {
			ref = a.Image
		}
		stack.ImageVars(vars, a.Image, ref)
	}
	return vars
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
