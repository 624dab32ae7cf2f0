package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/ui"
	"github.com/bitfield/script"
)

// Redeploy deploys one layer again in this run, however often it is asked
// (Deploy does a layer once per run): unless its inputs and objects are as
// recorded, it renders, deploys, verifies and records it like any run.
// Call it after Prepare, which holds the deploy lock.
func (e *Engine) Redeploy(ctx context.Context, layer string) (*Result, error) {
	if cause := context.Cause(e.runCtx); cause != nil {
		return nil, cause
	}
	ctx, stop := e.bind(ctx)
	defer stop()
	start := time.Now()
	res := &Result{Layer: layer}
	// A saved charts/common reaches the charts through their vendored copy.
	err := charts.Vendor(e.Repo)
	if err == nil {
		err = e.layer(ctx, layer, res)
	}
	res.Duration = time.Since(start)
	if err != nil {
		res.Action = Failed
		if res.Detail == "" {
			res.Detail = firstLine(err.Error())
		}
	}
	e.setResult(res)
	return res, err
}

// WatchPoll is how often watch looks at the files it follows.
const WatchPoll = 300 * time.Millisecond

// Watch is the dev loop of the named services until ctx ends, holding the
// deploy lock from start to end (another run is refused, naming this one).
// On a cluster that runs containers it is skaffold dev of their images and
// releases (watchBuild, watchbuild.go). On sim, where nothing is built, it
// follows their chart and values files (and their layers' Skaffold files)
// and, on every save, redeploys the layer each changed file belongs to,
// and only that layer.
func (e *Engine) Watch(ctx context.Context, services []Service) error {
	if e.Cluster.Name() != config.ClusterSim {
		return e.watchBuild(ctx, services)
	}
	files, err := e.watchedFiles(services)
	if err != nil {
		return err
	}
	if err := e.Prepare(ctx); err != nil {
		return err
	}
	defer e.Close()
	var layers []string
	for _, s := range services {
		if !slices.Contains(layers, s.Layer) {
			layers = append(layers, s.Layer)
		}
	}
	// Start from a verified deploy of each layer (skipped when unchanged).
	for _, l := range layers {
		if _, err := e.Redeploy(ctx, l); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			ui.Warn("%s is not verified; watch goes on and redeploys it on the next save", l)
		}
	}
	sums := fingerprint(e.Repo, files)
	ui.Info("watching %d files of %s (sim: no image is built; chart and values files redeploy their layer); Ctrl-C stops and leaves the platform as it is",
		len(files), strings.Join(serviceNames(services), ", "))
	tick := time.NewTicker(WatchPoll)
	defer tick.Stop()
	lastWarn := ""
	for {
		select {
		case <-ctx.Done():
			ui.Info("watch stopped; the platform is left as it is")
			return nil
		case <-tick.C:
		}
		// Read the set again: a file added to a chart counts, so does one removed.
		next, err := e.watchedFiles(services)
		if err != nil {
			if err.Error() != lastWarn {
				ui.Warn("watch: %v", err)
				lastWarn = err.Error()
			}
			continue
		}
		lastWarn = ""
		now := fingerprint(e.Repo, next)
		changed := changedLayers(sums, now, files, next)
		if len(changed) == 0 {
			continue
		}
		// An editor may write in several steps: settle, then read again.
		time.Sleep(WatchPoll)
		if settled, err := e.watchedFiles(services); err == nil {
			next = settled
		}
		files, sums = next, fingerprint(e.Repo, next)
		for _, l := range layers {
			if len(changed[l]) == 0 {
				continue
			}
			ui.Info("%s changed: redeploying %s", shortList(changed[l], 3), l)
			res, err := e.Redeploy(ctx, l)
			switch {
			case ctx.Err() != nil:
				ui.Info("watch stopped during a redeploy of %s; its record was dropped, so the next run deploys it", l)
				return nil
			case err != nil:
				ui.Warn("%s failed (the diagnosis is above); fix and save again", l)
			default:
				ui.Info("%s %s in %s", l, res.Action, ui.Round(res.Duration))
			}
		}
	}
}

// changedLayers maps each layer to its files whose content differs
// between two fingerprints (added and removed files included); before and
// after are the file sets each was taken of, file → layers.
func changedLayers(old, now map[string]string, before, after map[string][]string) map[string][]string {
	changed := map[string][]string{}
	note := func(f string, layers []string) {
		for _, l := range layers {
			if !slices.Contains(changed[l], f) {
				changed[l] = append(changed[l], f)
			}
		}
	}
	for f, layers := range after {
		if sum, ok := old[f]; !ok || sum != now[f] {
			note(f, layers)
		}
	}
	for f, layers := range before {
		if _, ok := now[f]; !ok {
			note(f, layers)
		}
	}
	for _, fs := range changed {
		sort.Strings(fs)
	}
	return changed
}

// watchedFiles maps every file watch follows (repository-relative) to
// its layer: each service's chart files and values files, and its layer's
// Skaffold file. A shared chart (e.g. service) is followed for the named
// services' layers only; the layers of other services that use it are
// left to the next `dev`, which sees the change in their digest.
func (e *Engine) watchedFiles(services []Service) (map[string][]string, error) {
	files := map[string][]string{}
	add := func(f, layer string) {
		if !slices.Contains(files[f], layer) {
			files[f] = append(files[f], layer)
		}
	}
	for _, s := range services {
		add(e.Stack.Layer(s.Layer).File, s.Layer)
		for _, v := range s.Release.ValuesFiles {
			add(v, s.Layer)
		}
		if s.Release.Remote {
			continue
		}
		// The chart's files and its library's (charts/common), not the
		// copy of the library vendored into it.
		found, err := charts.Files(e.Repo, s.Release.Chart)
		if err != nil {
			return nil, fmt.Errorf("chart %s of %s: %w", s.Release.Chart, s.Name, err)
		}
		for _, f := range found {
			add(filepath.FromSlash(f), s.Layer)
		}
	}
	return files, nil
}

// fingerprint is each file's SHA-256 ("" when it cannot be read).
func fingerprint(repo string, files map[string][]string) map[string]string {
	sums := map[string]string{}
	for f := range files {
		sum, err := script.File(filepath.Join(repo, f)).SHA256Sum()
		if err != nil {
			sum = ""
		}
		sums[f] = sum
	}
	return sums
}

func serviceNames(ss []Service) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name+" ("+s.Layer+")")
	}
	return out
}
