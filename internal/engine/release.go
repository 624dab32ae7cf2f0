package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/ui"
)

// Promotion by digest. A staging run that ends well writes the release
// file (ALT_RELEASE): the image references its layers' verified deploys
// deployed, each pinned by digest. Prod builds nothing: every prod run
// (`promote`, `all` or a layer target) deploys the references of that
// file, and refuses one that is not pinned by digest, before it touches
// any cluster.

// Release is the release file: what staging verified, to be committed and
// promoted to prod.
type Release struct {
	// Profile is the profile that verified it: staging.
	Profile string `json:"profile"`
	// Verified is the time of the newest of the layer deploys it holds.
	Verified string `json:"verified"`
	// Layers are, per layer, the time and inputs digest of the verified
	// deploy its images come from.
	Layers map[string]ReleaseLayer `json:"layers"`
	// Images maps every first-party image to the reference staging ran,
	// pinned by digest (name[:tag]@sha256:<64 hex>).
	Images map[string]string `json:"images"`
}

// ReleaseLayer is one layer's verified deploy in a release.
type ReleaseLayer struct {
	Time   string `json:"time"`
	Digest string `json:"digest"`
}

// pinnedRE is an image reference pinned by digest.
var pinnedRE = regexp.MustCompile(`^[^\s@]+@sha256:[0-9a-f]{64}$`)

// pinned reports whether ref names its image by digest.
func pinned(ref string) bool { return pinnedRE.MatchString(ref) }

// releasePath is ALT_RELEASE, relative paths taken from the repository.
func (e *Engine) releasePath() string {
	if filepath.IsAbs(e.Cfg.Release) {
		return e.Cfg.Release
	}
	return filepath.Join(e.Repo, e.Cfg.Release)
}

// ReadRelease reads a release file and checks it: written by staging,
// every reference pinned by digest. Each problem names the file and field.
func ReadRelease(path string) (*Release, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: no release file: prod deploys only what a staging run verified (run staging first, or point ALT_RELEASE at the file it wrote)", path)
	}
	if err != nil {
		return nil, err
	}
	var r Release
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: not a release file: %w", path, err)
	}
	var errs []error
	if r.Profile != "staging" {
		errs = append(errs, fmt.Errorf("%s: profile %q: prod promotes only what staging verified", path, r.Profile))
	}
	for _, img := range slices.Sorted(maps.Keys(r.Images)) {
		if !pinned(r.Images[img]) {
			errs = append(errs, fmt.Errorf("%s: images.%s: %q is not pinned by digest (want name@sha256:<64 hex>); prod refuses it", path, img, r.Images[img]))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &r, nil
}

// loadRelease is prod's bad-input check, before any tool or cluster: the
// release file holds a pinned reference for every image of these layers.
func (e *Engine) loadRelease(layers []string) error {
	if e.Cfg.Profile != "prod" {
		return nil
	}
	path := e.releasePath()
	r, err := ReadRelease(path)
	if err != nil {
		return err
	}
	var missing []string
	for _, l := range layers {
		v, err := e.Stack.Layer(l).View(e.Cfg.Profile, func(k string) string { return e.Env[k] })
		if err != nil {
			return err
		}
		for _, a := range v.Artifacts {
			if _, ok := r.Images[a.Image]; !ok {
				missing = append(missing, fmt.Sprintf("images.%s (%s)", a.Image, l))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: lacks %s: deploy staging with those layers first", path, strings.Join(missing, ", "))
	}
	e.release = r
	return nil
}

// promotedImages are prod's images: the release file's, nothing built.
func (e *Engine) promotedImages() {
	e.images = e.release.Images
	ui.Info("prod: no image is built; each is the reference staging verified (%s, verified %s), pinned by digest", e.Cfg.Release, e.release.Verified)
}

// expectedImages are the references a run would deploy for a layer whose
// last verified deploy is rec, as far as they are known without building:
// prod's release file, sim's placeholders, else those rec deployed.
func (e *Engine) expectedImages(rec Record) map[string]string {
	if e.Cfg.Profile == "prod" {
		if e.release == nil {
			e.release, _ = ReadRelease(e.releasePath())
		}
		if e.release != nil {
			return e.release.Images
		}
	}
	if e.Cluster.Name() == config.ClusterSim {
		return e.placeholderImages()
	}
	return recordedImages(rec)
}

// writeRelease writes the release file after a staging run that ended
// well: the images of every layer's last verified deploy on the cluster.
// A layer never verified, or changed by watch since, is left out, and
// said.
func (e *Engine) writeRelease(ctx context.Context) error {
	if e.Cfg.Profile != "staging" || e.state == nil {
		return nil
	}
	recs, err := e.state.Records(ctx)
	if err != nil {
		return fmt.Errorf("release file: reading the layers' records: %w", err)
	}
	r := Release{Profile: "staging", Layers: map[string]ReleaseLayer{}, Images: map[string]string{}}
	var left []string
	for _, l := range e.Stack.Names() {
		rec, ok := recs[l]
		if !ok || rec.Stale != "" {
			left = append(left, l)
			continue
		}
		r.Layers[l] = ReleaseLayer{Time: rec.Time, Digest: rec.Digest}
		r.Verified = max(r.Verified, rec.Time)
		for img, ref := range recordedImages(rec) {
			if !pinned(ref) {
				return fmt.Errorf("release file: image %s of %s was deployed as %q, not pinned by digest (was it pushed to ALT_REGISTRY?)", img, l, ref)
			}
			r.Images[img] = ref
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := e.releasePath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	ui.Info("release file %s: %d images staging verified, pinned by digest; commit it, then `mage promote` deploys them to prod", e.Cfg.Release, len(r.Images))
	if len(left) > 0 {
		ui.Warn("release file: %s left out (no verified staging deploy, or watch changed it since)", strings.Join(left, ", "))
	}
	return nil
}
