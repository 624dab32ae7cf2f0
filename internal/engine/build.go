package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/contract"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/standin"
	"github.com/alt-platform/orchestration/internal/ui"
)

// SrcLink is the link at the repository root to ALT_SRC (stack.SrcLink).
const SrcLink = stack.SrcLink

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
	bk, err := e.buildkitEnv(ctx)
	if err != nil {
		return step.End(fmt.Errorf("BuildKit for docker build: %w", err))
	}
	r := *e.Runner
	r.Env = withBuildkit(orEnviron(r.Env), bk)
	if err := step.End(r.Run(ctx, "skaffold", args...)); err != nil {
		return err
	}
	a, err := stack.ReadArtifacts(e.artifacts)
	if err != nil {
		return err
	}
	e.images = a
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

// Sources is what the Alt checkout ALT_SRC holds for some layers: its
// commit against the contract's pin, and every build context and
// Dockerfile of those layers that it lacks.
type Sources struct {
	Dir    string
	Commit string // or why it is not known
	Pinned string // docs/alt-contract.yaml alt.commit
	AtPin  bool
	// Standin: ALT_SRC is a tree of stand-ins (kind:standins), not Alt's
	// sources; no Alt code runs.
	Standin bool
	Missing []error
	hint    string
}

// Sources points SrcLink at ALT_SRC and reads what it holds for the given
// layers. The error says that ALT_SRC is not a folder, or that the
// contract cannot be read.
func (e *Engine) Sources(ctx context.Context, layers []string) (*Sources, error) {
	c, err := contract.Load(e.Repo)
	if err != nil {
		return nil, err
	}
	src := e.Cfg.Src
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("ALT_SRC=%s: not a folder; get Alt's sources at the pinned commit: %s", src, c.CheckoutHint(src))
	}
	link := filepath.Join(e.Repo, SrcLink)
	if cur, err := os.Readlink(link); err != nil || cur != src {
		os.Remove(link)
		if err := os.Symlink(src, link); err != nil {
			return nil, fmt.Errorf("linking %s to ALT_SRC: %w", link, err)
		}
	}
	r := &Sources{Dir: src, Pinned: c.Alt.Commit, hint: fmt.Sprintf("git -C %s fetch && git -C %s checkout %s", src, src, c.Alt.Commit)}
	// Name paths under ALT_SRC, not under the link.
	show := func(p string) string { return filepath.Join(src, strings.TrimPrefix(p, link)) }
	if ok, marker := standin.IsTree(src); ok {
		r.Standin = true
		r.Commit = standin.TreeCommit(marker)
		r.AtPin = r.Commit == c.Alt.Commit
	} else {
		var known bool
		r.Commit, known = contract.Commit(ctx, e.Runner, src)
		r.AtPin = known && r.Commit == c.Alt.Commit
	}
	for _, name := range layers {
		v, err := e.Stack.Layer(name).View(e.Cfg.Profile, nil)
		if err != nil {
			return nil, err
		}
		layerDir := filepath.Join(e.Repo, filepath.Dir(stack.RootFile), v.Layer.Dir)
		for _, a := range v.Artifacts {
			ctxDir := filepath.Join(layerDir, a.Context)
			if _, err := os.Stat(ctxDir); err != nil {
				r.Missing = append(r.Missing, fmt.Errorf("%s: build context of %s: %s does not exist", v.Layer.File, a.Image, show(ctxDir)))
				continue
			}
			if _, err := os.Stat(filepath.Join(ctxDir, a.Dockerfile)); err != nil {
				r.Missing = append(r.Missing, fmt.Errorf("%s: Dockerfile of %s: %s does not exist", v.Layer.File, a.Image, show(filepath.Join(ctxDir, a.Dockerfile))))
			}
		}
	}
	return r, nil
}

// Report says, one line each, where the checkout stands against the pin.
func (s *Sources) Report() []string {
	if s.Standin {
		what := "the layout of Alt's pinned commit " + s.Pinned
		if !s.AtPin {
			what = "the layout of Alt's commit " + s.Commit + ", NOT the pinned " + s.Pinned + " (regenerate it: mage kind:standins)"
		}
		return []string{fmt.Sprintf("ALT_SRC=%s: %s (%s); every first-party image is a stand-in", s.Dir, standin.Banner, what)}
	}
	if s.AtPin {
		return []string{fmt.Sprintf("ALT_SRC=%s is at Alt's pinned commit %s", s.Dir, s.Pinned)}
	}
	return []string{
		fmt.Sprintf("ALT_SRC=%s is at commit %s, not Alt's pinned commit %s (%s): the wiring was checked against the pinned commit only",
			s.Dir, s.Commit, s.Pinned, contract.File),
		fmt.Sprintf("%d build context(s) or Dockerfile(s) missing there; to check out the pinned sources: %s", len(s.Missing), s.hint),
	}
}

// CheckSources checks that ALT_SRC holds every build context and
// Dockerfile of the given layers, naming every one that does not, and warns
// when it is not at the contract's pinned commit.
func (e *Engine) CheckSources(layers []string) error {
	s, err := e.Sources(context.Background(), layers)
	if err != nil {
		return err
	}
	if s.Standin {
		standinBanner(s)
	} else if !s.AtPin {
		for _, l := range s.Report() {
			ui.Warn("%s", l)
		}
	}
	return errors.Join(s.Missing...)
}

// ValidateSources reports what ALT_SRC holds against the contract's pin
// and the layers' build contexts. Only a kind cluster builds images: there
// a missing context is an error; on sim and existing contexts it is said
// and the run goes on.
func (e *Engine) ValidateSources(ctx context.Context) error {
	builds := e.Cfg.Cluster == config.ClusterKind
	step := ui.Start("sources: ALT_SRC=%s against %s", e.Cfg.Src, contract.File)
	s, err := e.Sources(ctx, e.Stack.Names())
	if err != nil {
		if builds {
			return step.End(err)
		}
		step.Skip("not checked: " + err.Error() + " (the " + e.Cfg.Cluster + " cluster builds nothing)")
		return nil
	}
	if s.AtPin && len(s.Missing) == 0 {
		step.Skip(s.Report()[0] + ", with every build context and Dockerfile")
		if s.Standin {
			standinBanner(s)
		}
		return nil
	}
	if !builds || len(s.Missing) == 0 {
		step.Skip("see below")
	} else {
		step.Fail()
	}
	for _, l := range s.Report() {
		ui.Warn("%s", l)
	}
	for _, m := range s.Missing {
		ui.Warn("%v", m)
	}
	if builds && len(s.Missing) > 0 {
		return fmt.Errorf("ALT_SRC=%s lacks %d build context(s) or Dockerfile(s) the kind cluster builds (listed above)", s.Dir, len(s.Missing))
	}
	return nil
}

var standinOnce sync.Once

// standinBanner says, once per run and loudly, that ALT_SRC holds
// stand-ins: never a silent default.
func standinBanner(s *Sources) {
	standinOnce.Do(func() {
		ui.Banner("STAND-IN SOURCES: no Alt code runs. ALT_SRC="+s.Dir+" was written by kind:standins.",
			"Every first-party image is a FROM-scratch stand-in that checks its environment, listens on",
			"Alt's ports, answers Alt's health paths and echoes requests; it proves the platform, not Alt.")
	})
}

func orEnviron(env []string) []string {
	if env == nil {
		return os.Environ()
	}
	return env
}
