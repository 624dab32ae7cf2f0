package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/ui"
)

// SrcLink is the git-ignored link at the repository root through which the
// layer configs reach the Alt source checkout (ALT_SRC).
const SrcLink = ".alt-src"

// build runs one `skaffold build` for the layers of this run, BuildKit on,
// and keeps the tags it writes for every layer's deploy.
func (e *Engine) build(ctx context.Context) error {
	layers := e.thisRun()
	if err := e.CheckSources(layers); err != nil {
		return err
	}
	args := []string{"build", "-f", stack.RootFile, "-p", e.Cfg.Profile, "--file-output", e.artifacts}
	for _, l := range layers {
		args = append(args, "-m", l)
	}
	if r, ok := e.Cluster.(imageRepoer); ok {
		// The cluster's own registry (kind): push there, nodes pull from it.
		args = append(args, "--default-repo", r.ImageRepo(), "--push=true")
	} else if e.Cfg.Registry != "" {
		args = append(args, "--default-repo", e.Cfg.Registry)
	}
	step := ui.Start("build images of %s (skaffold build, BuildKit)", strings.Join(layers, ", "))
	r := *e.Runner
	r.Env = append(r.Env, "DOCKER_BUILDKIT=1")
	if err := step.End(r.Run(ctx, "skaffold", args...)); err != nil {
		return err
	}
	b, err := os.ReadFile(e.artifacts)
	if err != nil {
		return err
	}
	var out struct {
		Builds []struct {
			ImageName string `json:"imageName"`
			Tag       string `json:"tag"`
		} `json:"builds"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("%s: %w", e.artifacts, err)
	}
	e.images = map[string]string{}
	for _, bd := range out.Builds {
		e.images[bd.ImageName] = bd.Tag
	}
	return nil
}

// thisRun are the layers the Mage targets of this process deploy (every
// layer when no layer target was named, e.g. a bench or a test).
func (e *Engine) thisRun() []string {
	if layers := e.Graph.RunLayers(CommandTargets(os.Args[1:])); len(layers) > 0 {
		return layers
	}
	return e.Stack.Names()
}

// CheckSources points SrcLink at ALT_SRC and checks that every build
// context and Dockerfile of the given layers exists, naming every one that
// does not.
func (e *Engine) CheckSources(layers []string) error {
	src := e.Cfg.Src
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return fmt.Errorf("ALT_SRC=%s: not a folder; set ALT_SRC to your checkout of the Alt sources", src)
	}
	link := filepath.Join(e.Repo, SrcLink)
	if cur, err := os.Readlink(link); err != nil || cur != src {
		os.Remove(link)
		if err := os.Symlink(src, link); err != nil {
			return fmt.Errorf("linking %s to ALT_SRC: %w", link, err)
		}
	}
	var missing []error
	for _, name := range layers {
		v, err := e.Stack.Layer(name).View(e.Cfg.Profile, nil)
		if err != nil {
			return err
		}
		layerDir := filepath.Join(e.Repo, filepath.Dir(stack.RootFile), v.Layer.Dir)
		for _, a := range v.Artifacts {
			ctxDir := filepath.Join(layerDir, a.Context)
			if _, err := os.Stat(ctxDir); err != nil {
				missing = append(missing, fmt.Errorf("%s: build context of %s: %s does not exist", v.Layer.File, a.Image, ctxDir))
				continue
			}
			if _, err := os.Stat(filepath.Join(ctxDir, a.Dockerfile)); err != nil {
				missing = append(missing, fmt.Errorf("%s: Dockerfile of %s: %s does not exist", v.Layer.File, a.Image, filepath.Join(ctxDir, a.Dockerfile)))
			}
		}
	}
	return errors.Join(missing...)
}
