package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The dev loop of a cluster that runs containers (kind): `skaffold dev` on
// a config made for the watched services alone (watchConfig), which
// rebuilds their images with BuildKit on every save of their build
// contexts, pushes them to the cluster's registry and redeploys their
// releases, with port-forwards to their Services. Ctrl-C stops it and
// leaves the platform as it is (cleanup off); the layers' records say that
// watch changed them, so the next `dev` redeploys them.

// WatchFile is the Skaffold config watch runs, relative to the repository.
const WatchFile = ".cache/run/watch-skaffold.yaml"

// WatchPollMillis is how often skaffold dev looks at the watched files.
const WatchPollMillis = 500

// portForward is one port of a Service of a release, forwarded to
// 127.0.0.1:Local.
type portForward struct {
	Release, Namespace, Service string
	Port, Local                 int
}

// watchBuild is watch on a kind cluster. The platform must be up (`dev`):
// it attaches to the cluster, takes the deploy lock, marks the services'
// layers stale and runs skaffold dev until ctx ends.
func (e *Engine) watchBuild(ctx context.Context, services []Service) error {
	repo, ok := e.Cluster.(imageRepoer)
	if !ok {
		return fmt.Errorf("watch builds images only on a kind cluster (its own registry); a %s cluster is not rebuilt from a laptop", e.Cluster.Name())
	}
	layers := watchLayers(services)
	if err := e.CheckSources(layers); err != nil {
		return err
	}
	if _, err := e.Tools.Ensure(ctx, tools.Deploy...); err != nil {
		return err
	}
	k, err := e.Attach(ctx)
	if err != nil {
		return err
	}
	if err := e.bindCluster(ctx, k); err != nil {
		return err
	}
	recs, err := e.state.Records(ctx)
	if err != nil {
		return err
	}
	var fwds []portForward
	for _, s := range services {
		hr, err := e.rel.Release(ctx, s.Name, s.Namespace)
		if err != nil {
			return err
		}
		if _, recorded := recs[s.Layer]; !recorded && hr == nil {
			return fmt.Errorf("%s (%s) is not deployed: watch redeploys services of a running platform; run `mage dev` first", s.Name, s.Layer)
		}
		svcs, err := k.Client.CoreV1().Services(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + s.Name})
		if err != nil {
			return err
		}
		for _, svc := range svcs.Items {
			if svc.Spec.ClusterIP == "None" || svc.Spec.ClusterIP == "" || len(svc.Spec.Selector) == 0 {
				continue // headless, ExternalName or without pods: nothing to forward to
			}
			for _, p := range svc.Spec.Ports {
				local, err := freePort()
				if err != nil {
					return err
				}
				fwds = append(fwds, portForward{Release: s.Name, Namespace: svc.Namespace, Service: svc.Name, Port: int(p.Port), Local: local})
			}
		}
	}
	bk, err := e.buildkitEnv(ctx)
	if err != nil {
		return fmt.Errorf("BuildKit for docker build: %w", err)
	}
	if err := e.takeLock(ctx, k); err != nil {
		return err
	}
	defer e.Close()
	// Losing the lock stops skaffold dev too.
	ctx, stop := e.bind(ctx)
	defer stop()
	return e.devLoop(ctx, services, fwds, repo.ImageRepo(), bk)
}

// devLoop writes the watch config, marks the layers stale and runs
// skaffold dev on it until ctx ends (nil) or skaffold fails. bk is the
// environment BuildKit needs (buildkitEnv).
func (e *Engine) devLoop(ctx context.Context, services []Service, fwds []portForward, imageRepo string, bk []string) error {
	b, images, err := e.watchConfig(services, fwds)
	if err != nil {
		return err
	}
	file := filepath.Join(e.Repo, WatchFile)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return err
	}
	layers := watchLayers(services)
	if err := e.markStale(ctx, layers, services); err != nil {
		return err
	}
	var r run.Runner
	if e.Runner != nil {
		r = *e.Runner
	}
	r.Env = withBuildkit(orEnviron(r.Env), bk)
	r.Dir = e.Repo
	out := &watchOutput{w: ui.Writer(), ready: func() {
		ui.Info("watching %s: a save in a build context (%s), chart or values file rebuilds and redeploys; Ctrl-C stops and leaves the platform as it is",
			strings.Join(serviceNames(services), ", "), orNone(images))
	}}
	r.Verbose, r.Stdout, r.Stderr = true, out, out
	args := devArgs(file, imageRepo)
	ui.Info("skaffold dev of %s (%s; its images only, BuildKit, pushed to %s; cleanup off)",
		strings.Join(serviceNames(services), ", "), WatchFile, imageRepo)
	err = e.dev(ctx, &r, args)
	out.Flush()
	if cause := context.Cause(ctx); errors.Is(cause, ErrLockLost) {
		return fmt.Errorf("watch stopped: %w (the next `mage dev` redeploys %s)", cause, strings.Join(layers, ", "))
	}
	if ctx.Err() != nil {
		ui.Info("watch stopped; the platform is left as it is. The next `mage dev` redeploys %s (their records say watch changed them)", strings.Join(layers, ", "))
		return nil
	}
	if err == nil {
		err = errors.New("skaffold dev ended by itself")
	}
	return fmt.Errorf("watch: %w (the next `mage dev` redeploys %s)", err, strings.Join(layers, ", "))
}

// dev runs skaffold dev; tests replace it.
func (e *Engine) dev(ctx context.Context, r *run.Runner, args []string) error {
	if e.devRun != nil {
		return e.devRun(ctx, r, args)
	}
	return r.Run(ctx, "skaffold", args...)
}

// devArgs are skaffold dev's arguments: cleanup off (Ctrl-C leaves what was
// deployed), the config's own port-forwards only, files polled.
func devArgs(file, imageRepo string) []string {
	return []string{"dev", "-f", file, "--default-repo", imageRepo,
		"--cleanup=false", "--port-forward=user", "--status-check=true",
		"--trigger=polling", "--watch-poll-interval=" + strconv.Itoa(WatchPollMillis)}
}

// markStale notes in each layer's record that watch changes its objects:
// the next run deploys the layer whatever its digest, and status says so.
// A layer without a record is deployed by the next run anyway.
func (e *Engine) markStale(ctx context.Context, layers []string, services []Service) error {
	recs, err := e.state.Records(ctx)
	if err != nil {
		return err
	}
	at := time.Now().UTC().Format(time.RFC3339)
	for _, l := range layers {
		rec, ok := recs[l]
		if !ok {
			continue
		}
		var names []string
		for _, s := range services {
			if s.Layer == l {
				names = append(names, s.Name)
			}
		}
		rec.Stale = fmt.Sprintf("watch rebuilt and redeployed %s (from %s)", strings.Join(names, ", "), at)
		if err := e.state.SaveRecord(ctx, l, rec); err != nil {
			return fmt.Errorf("marking %s's record stale: %w", l, err)
		}
	}
	return nil
}

func watchLayers(services []Service) []string {
	var layers []string
	for _, s := range services {
		if !slices.Contains(layers, s.Layer) {
			layers = append(layers, s.Layer)
		}
	}
	return layers
}

// watchConfig is the Skaffold config of watch on a building cluster: one
// document per layer of the services, holding only their releases and the
// artifacts those releases name (stack.Release.Images), each entry as the
// layer file writes it under the run's profile, with every path made
// absolute (the file lives in .cache/run, and a build context is followed
// through the ALT_SRC link to the checkout). What differs from the layer:
//   - tagPolicy inputDigest: a tag per content. The layers' gitCommit tags
//     an edited tree <commit>-dirty at every save, so a second save would
//     deploy the same reference and nothing would roll out.
//   - local.push true and BuildKit on: pushed to the cluster's registry.
//   - no hooks: they gate a whole layer, which dev verified; skaffold's
//     status check waits for the watched releases' rollouts.
//   - portForward: each Service port of the releases to a fixed local port.
//   - no profiles: the profile was applied here.
func (e *Engine) watchConfig(services []Service, fwds []portForward) ([]byte, []string, error) {
	var docs [][]byte
	var images []string
	for _, layer := range watchLayers(services) {
		l := e.Stack.Layer(layer)
		v, err := l.View(e.Cfg.Profile, func(k string) string { return e.Env[k] })
		if err != nil {
			return nil, nil, err
		}
		dir := filepath.Join(e.Repo, filepath.Dir(stack.RootFile), l.Dir)
		var releases, artifacts []any
		var pf []any
		for _, s := range services {
			if s.Layer != layer {
				continue
			}
			i := slices.IndexFunc(v.Releases, func(r stack.Release) bool { return r.Name == s.Name })
			if i < 0 {
				return nil, nil, fmt.Errorf("%s: no release %s under profile %s", l.File, s.Name, e.Cfg.Profile)
			}
			rel, err := absRelease(v.Releases[i].Raw, dir)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: release %s: %w", l.File, s.Name, err)
			}
			releases = append(releases, rel)
			for _, img := range v.Releases[i].Images(v.Artifacts) {
				if slices.Contains(images, img) {
					continue
				}
				images = append(images, img)
				a := v.Artifacts[slices.IndexFunc(v.Artifacts, func(a stack.Artifact) bool { return a.Image == img })]
				art, err := absArtifact(a.Raw, dir)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: artifact %s: %w", l.File, img, err)
				}
				artifacts = append(artifacts, art)
			}
			for _, f := range fwds {
				if f.Release == s.Name {
					pf = append(pf, map[string]any{"resourceType": "service", "resourceName": f.Service,
						"namespace": f.Namespace, "port": f.Port, "address": "127.0.0.1", "localPort": f.Local})
				}
			}
		}
		doc := map[string]any{
			"apiVersion": l.APIVersion(),
			"kind":       "Config",
			"metadata":   map[string]any{"name": l.Name},
			"deploy":     map[string]any{"helm": map[string]any{"releases": releases}},
		}
		if len(artifacts) > 0 {
			doc["build"] = map[string]any{"artifacts": artifacts, "tagPolicy": map[string]any{"inputDigest": map[string]any{}},
				"local": map[string]any{"push": true, "useBuildkit": true}}
		}
		if len(pf) > 0 {
			doc["portForward"] = pf
		}
		b, err := yaml.Marshal(doc)
		if err != nil {
			return nil, nil, err
		}
		docs = append(docs, b)
	}
	head := []byte("# Written by `mage watch` for skaffold dev; regenerated on every watch. Not an input of any layer.\n")
	return append(head, bytes.Join(docs, []byte("---\n"))...), images, nil
}

// copyRaw deep-copies a layer file entry.
func copyRaw(raw map[string]any) (map[string]any, error) {
	if raw == nil {
		return nil, errors.New("no entry in the layer file")
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var c map[string]any
	return c, json.Unmarshal(b, &c)
}

func absPath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// absRelease is a release entry with chartPath, valuesFiles and setFiles
// made absolute.
func absRelease(raw map[string]any, dir string) (map[string]any, error) {
	r, err := copyRaw(raw)
	if err != nil {
		return nil, err
	}
	if p, ok := r["chartPath"].(string); ok {
		r["chartPath"] = absPath(dir, p)
	}
	if vf, ok := r["valuesFiles"].([]any); ok {
		for i, f := range vf {
			if s, ok := f.(string); ok {
				vf[i] = absPath(dir, s)
			}
		}
	}
	if sf, ok := r["setFiles"].(map[string]any); ok {
		for k, f := range sf {
			if s, ok := f.(string); ok {
				sf[k] = absPath(dir, s)
			}
		}
	}
	return r, nil
}

// absArtifact is an artifact entry with its context made absolute and
// followed through links (the ALT_SRC link), so that its files are
// watched where they are edited.
func absArtifact(raw map[string]any, dir string) (map[string]any, error) {
	a, err := copyRaw(raw)
	if err != nil {
		return nil, err
	}
	ctxDir, _ := a["context"].(string)
	if ctxDir == "" {
		ctxDir = "."
	}
	p := absPath(dir, ctxDir)
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	a["context"] = p
	return a, nil
}

// watchOutput passes skaffold dev's output on line by line, each
// port-forward line once (skaffold prints them again after every
// redeploy), and calls ready when the first iteration is done.
type watchOutput struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
	seen    map[string]bool
	ready   func()
	isReady bool
}

func (o *watchOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(o.partial[:i+1])
		o.partial = o.partial[i+1:]
		o.line(line)
	}
}

// Flush writes what is left of an unfinished line.
func (o *watchOutput) Flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.partial) > 0 {
		o.line(string(o.partial) + "\n")
		o.partial = nil
	}
}

func (o *watchOutput) line(l string) {
	if strings.Contains(l, "Port forwarding ") {
		if o.seen == nil {
			o.seen = map[string]bool{}
		}
		if o.seen[l] {
			return
		}
		o.seen[l] = true
	}
	io.WriteString(o.w, l)
	if !o.isReady && strings.Contains(l, "Watching for changes") {
		o.isReady = true
		if o.ready != nil {
			o.ready()
		}
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none: no image of theirs is built here"
	}
	return strings.Join(s, ", ")
}
