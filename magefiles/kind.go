//go:build mage

package main

import (
	"context"
	"fmt"

	"github.com/alt-platform/orchestration/internal/ci"
	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/kind"
	"github.com/alt-platform/orchestration/internal/kindimage"
	"github.com/alt-platform/orchestration/internal/standin"
	"github.com/alt-platform/orchestration/internal/ui"
	"github.com/magefile/mage/mg"
)

// Kind is the local kind cluster (Docker) and its image registry; the
// kubeconfig is .cache/kind/kubeconfig, your own kubeconfig is not touched.
type Kind mg.Namespace

// Create makes the kind cluster and its registry, or reuses them; prints the kubeconfig path last. Reads ALT_KIND_NAME, ALT_KIND_REGISTRY_PORT, ALT_KIND_RECREATE, ALT_KIND_OFFLINE (offline it builds the images of kind:image first if missing, using ALT_TOOLS_DIR).
func (Kind) Create(ctx context.Context) error {
	p, err := kindProvider()
	if err != nil {
		return err
	}
	if err := p.Preflight(ctx); err != nil {
		return err
	}
	kubeconfig, err := p.Ensure(ctx)
	if err != nil {
		return err
	}
	fmt.Println(kubeconfig)
	return nil
}

// Delete removes the kind cluster, its registry (and the images in it) and its kubeconfig. Reads ALT_KIND_NAME.
func (Kind) Delete(ctx context.Context) error {
	p, err := kindProvider()
	if err != nil {
		return err
	}
	return p.Delete(ctx, false)
}

// Reset deletes the kind cluster and creates it again, keeping the registry and its images; prints the kubeconfig path last. Reads ALT_KIND_NAME, ALT_KIND_REGISTRY_PORT, ALT_KIND_OFFLINE.
func (Kind) Reset(ctx context.Context) error {
	p, err := kindProvider()
	if err != nil {
		return err
	}
	if err := p.Preflight(ctx); err != nil {
		return err
	}
	kubeconfig, err := p.Reset(ctx)
	if err != nil {
		return err
	}
	fmt.Println(kubeconfig)
	return nil
}

// Image builds, once per machine, the images the kind cluster uses when no image registry is reachable (ALT_KIND_OFFLINE): the node image of the pinned Kubernetes version and the registry image; present ones are reused. Reads ALT_TOOLS_DIR.
func (Kind) Image(ctx context.Context) error {
	b, err := kindImages()
	if err != nil {
		return err
	}
	imgs, err := b.Ensure(ctx)
	if err != nil {
		return err
	}
	fmt.Println(imgs.Node)
	fmt.Println(imgs.Registry)
	return nil
}

func kindImages() (*kindimage.Builder, error) {
	tc, err := toolsCache()
	if err != nil {
		return nil, err
	}
	return &kindimage.Builder{Tools: tc, Runner: newRunner()}, nil
}

func kindProvider() (*kind.Provider, error) {
	repo, err := engine.FindRepo()
	if err != nil {
		return nil, err
	}
	cfg, err := config.FromEnvironment()
	if err != nil {
		return nil, err
	}
	return kind.FromConfig(repo, cfg, newRunner(), nil), nil
}

// Standins writes stand-in sources for Alt (no Alt code runs in them): a tree with the layout of Alt at the pinned commit, each Dockerfile FROM scratch around one static program that behaves as docs/alt-contract.yaml says; prints its folder last (use it as ALT_SRC). Reads ALT_STANDIN_CRASH.
func (Kind) Standins(ctx context.Context) error {
	repo, err := engine.FindRepo()
	if err != nil {
		return err
	}
	cfg, err := config.FromEnvironment()
	if err != nil {
		return err
	}
	dir, err := standin.Generate(ctx, newRunner(), repo, standin.TreeDir(repo), standin.TreeOptions{Crash: cfg.StandinCrash})
	if err != nil {
		return err
	}
	ui.Banner(standin.Banner+": "+dir+" holds stand-ins, not Alt's sources.",
		"With ALT_SRC="+dir+" every first-party image is a stand-in; dev says so on every run.")
	fmt.Println(dir)
	return nil
}

// CI runs ci's kind stage alone: on a copy of the platform with stand-in sources, kind:create, dev (every layer Ready on a real kubelet), every nginx-external route through localhost, dev again unchanged, a crashing stand-in's diagnosis, kind:reset, and the cluster deleted pass or fail; writes .cache/ci/junit.xml. Reads ALT_KIND_NAME (default alt-ci), ALT_KIND_REGISTRY_PORT, ALT_TOOLS_DIR.
func (Kind) CI(ctx context.Context) error {
	repo, self, tc, err := repoSelfTools()
	if err != nil {
		return err
	}
	return ci.RunKind(ctx, ci.Options{Repo: repo, Self: self, Tools: tc, Runner: newRunner()})
}
