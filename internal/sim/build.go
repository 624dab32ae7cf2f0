package sim

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"

	"github.com/alt-platform/orchestration/internal/flock"

	"github.com/alt-platform/orchestration/internal/tools"
)

//go:embed provisioner/main.go
var provisionerSource []byte

// provisionerGoMod is the go.mod of the provisioner's build folder: the
// source uses only the standard library, so the build downloads nothing.
const provisionerGoMod = "module alt-platform/tools/sim-provisioner\n\ngo 1.26\n"

// provisionerDir is where the provisioner built from this source lives in
// the tools cache: keyed by a hash of its source, so an edit rebuilds it.
func provisionerDir(cacheDir string) string {
	sum := sha256.Sum256(append(slices.Clone(provisionerSource), provisionerGoMod...))
	return filepath.Join(cacheDir, Provisioner+"-"+hex.EncodeToString(sum[:6]))
}

// provisioner returns the provisioner binary, building it when missing
// (about a second: standard library only).
func (c *Cluster) provisioner(ctx context.Context) (string, error) {
	dir := provisionerDir(c.Cache.Dir)
	bin := filepath.Join(dir, Provisioner)
	if exists(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		return "", err
	}
	unlock, err := flock.Lock(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if exists(bin) { // built by another run while we waited
		return bin, nil
	}
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(provisionerGoMod), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), provisionerSource, 0o644); err != nil {
		return "", err
	}
	r := *c.Runner
	r.Dir = src
	env := r.Env
	if env == nil {
		env = os.Environ()
	}
	r.Env = append(slices.Clone(env), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	tmp := bin + ".tmp"
	if err := r.Run(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, "."); err != nil {
		return "", err
	}
	return bin, os.Rename(tmp, bin)
}

// kubeVersion is the pinned Kubernetes version, stamped on the nodes.
func kubeVersion() string {
	t, err := tools.Lookup(APIServer)
	if err != nil {
		return ""
	}
	return t.Version
}
