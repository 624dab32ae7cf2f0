// Package stack reads the Skaffold files into one model of the platform:
// layers, their releases, artifacts, profiles and hooks. Every target, check
// and report works from this model, and Validate checks it before anything
// touches a cluster.
package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// RootFile is the root Skaffold config, relative to the repository root.
const RootFile = "skaffold/skaffold.yaml"

// Stack is the whole platform as the Skaffold files describe it.
type Stack struct {
	Repo   string   // repository root (absolute)
	Layers []*Layer // in the root's requires order

	// unknown are the fields of the root and layer files that Skaffold
	// would reject; Validate reports them.
	unknown Problems
}

// Layer is one Skaffold config required by the root.
type Layer struct {
	Name     string // metadata.name, e.g. alt-core-services
	Dir      string // folder under skaffold/, e.g. 04-core-services
	File     string // path relative to the repository root
	Profiles []string
	// Conditional are profiles activated by an environment variable
	// (e.g. ALT_CERT_MANAGER=off), by name.
	Conditional map[string]string

	raw skaffoldFile
}

// View is a layer as one profile renders it.
type View struct {
	Layer     *Layer
	Profile   string
	Artifacts []Artifact
	Releases  []Release
	Before    []Hook
	After     []Hook
	Push      bool
	Buildkit  bool
	TagPolicy string
}

// SrcLink is the git-ignored link at the repository root through which the
// layer configs reach the Alt source checkout (ALT_SRC): a build context
// is ../../.alt-src/<folder in Alt>.
const SrcLink = ".alt-src"

// Artifact is one first-party image a layer builds.
type Artifact struct {
	Image      string
	Context    string // as written, relative to the layer folder
	Dockerfile string
	BuildArgs  map[string]string // docker.buildArgs (a null value: "")
	// Raw is the entry as written in the layer file (paths relative to
	// the layer folder), every field included.
	Raw map[string]any
}

// Release is one Helm release.
type Release struct {
	Name        string
	Namespace   string
	Chart       string // chartPath relative to the repository root, or the remote chart
	Remote      bool
	Version     string
	ValuesFiles []string // relative to the repository root
	Templates   map[string]string
	// CreateNamespace is true when the release asks Helm to create its
	// namespace, which this platform forbids (01-foundation owns them).
	CreateNamespace bool
	// BuildsDependencies is true when Skaffold would run `helm dependency
	// build` on the chart before installing it (skipBuildDependencies not
	// true).
	BuildsDependencies bool
	// Raw is the entry as written in the layer file (paths relative to
	// the layer folder), every field included.
	Raw map[string]any
}

// Hook is one host command run before or after a layer's deploy.
type Hook struct {
	Command []string
	// Dir is the hook's working directory relative to the repository root
	// (its dir, which Skaffold resolves against the layer's folder); ""
	// when it sets none: Skaffold's own, the repository root when the
	// engine runs it.
	Dir string
}

// ScriptsDir holds the scripts hooks call; every script sources ScriptLib.
const (
	ScriptsDir = "scripts"
	ScriptLib  = "scripts/lib"
)

// Script is the file of ScriptsDir the hook runs (relative to the
// repository root), or "" when its command is not one of them.
func (h Hook) Script() string {
	if len(h.Command) == 0 || !strings.Contains(h.Command[0], "/") || filepath.IsAbs(h.Command[0]) {
		return ""
	}
	p := filepath.Join(h.Dir, h.Command[0])
	if rel, ok := strings.CutPrefix(filepath.ToSlash(p), ScriptsDir+"/"); !ok || rel == "" {
		return ""
	}
	return p
}

// Load reads the root config of the repository at repo and every layer it
// requires. It fails only when a file cannot be read or parsed; everything
// else is for Validate.
func Load(repo string) (*Stack, error) {
	repo, err := filepath.Abs(repo)
	if err != nil {
		return nil, err
	}
	root, unknown, err := readFile(repo, RootFile)
	if err != nil {
		return nil, err
	}
	s := &Stack{Repo: repo, unknown: unknown}
	var errs []error
	for i, req := range root.Requires {
		rel := filepath.Join(filepath.Dir(RootFile), req.Path, "skaffold.yaml")
		if req.Path == "" {
			errs = append(errs, fmt.Errorf("%s: requires[%d].path: empty; expected a layer folder such as 01-foundation", RootFile, i))
			continue
		}
		raw, unknown, err := readFile(repo, rel)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: requires[%d].path: %w", RootFile, i, err))
			continue
		}
		s.unknown = append(s.unknown, unknown...)
		l := &Layer{Name: raw.Metadata.Name, Dir: filepath.Clean(req.Path), File: rel, raw: *raw, Conditional: map[string]string{}}
		for _, p := range raw.Profiles {
			if len(p.Activation) > 0 && !slices.Contains(profileNames, p.Name) {
				var envs []string
				for _, a := range p.Activation {
					envs = append(envs, a.Env)
				}
				l.Conditional[p.Name] = strings.Join(envs, ",")
				continue
			}
			l.Profiles = append(l.Profiles, p.Name)
		}
		s.Layers = append(s.Layers, l)
	}
	if len(s.Layers) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: requires: empty; expected one entry per layer", RootFile))
	}
	return s, errors.Join(errs...)
}

var profileNames = []string{"dev", "staging", "prod"}

// readFile parses one Skaffold file and lists the fields Skaffold would
// reject in it.
func readFile(repo, rel string) (*skaffoldFile, Problems, error) {
	b, err := os.ReadFile(filepath.Join(repo, rel))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s: file does not exist", rel)
		}
		return nil, nil, err
	}
	var f skaffoldFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("%s: not valid YAML: %v", rel, err)
	}
	return &f, unknownFields(rel, b), nil
}

// Layer returns the layer with that config name or folder.
func (s *Stack) Layer(name string) *Layer {
	for _, l := range s.Layers {
		if l.Name == name || l.Dir == name {
			return l
		}
	}
	return nil
}

// Names are the config names of every layer, in requires order.
func (s *Stack) Names() []string {
	n := make([]string, len(s.Layers))
	for i, l := range s.Layers {
		n[i] = l.Name
	}
	return n
}

// View applies a profile, and every conditional profile whose activation
// the given environment satisfies, the way Skaffold does: the activated
// ones first (in the order they are written), then the named one, so a
// named profile that restates a section wins over a conditional one
// (Skaffold's schema.activatedProfiles); a profile's pointer sections
// replace the base ones whole, its non-empty lists replace the base lists.
func (l *Layer) View(profileName string, env func(string) string) (*View, error) {
	if !slices.Contains(l.Profiles, profileName) {
		return nil, fmt.Errorf("%s: profiles: no profile %q (defined: %s)", l.File, profileName, strings.Join(l.Profiles, ", "))
	}
	var order []profile
	named := -1
	for i, p := range l.raw.Profiles {
		switch {
		case activated(p, env):
			order = append(order, p)
		case p.Name == profileName && named < 0:
			named = i
		}
	}
	if named >= 0 {
		order = append(order, l.raw.Profiles[named])
	}
	build, deploy := l.raw.Build, l.raw.Deploy
	for _, p := range order {
		if p.Build != nil {
			merged := buildConfig{}
			if build != nil {
				merged = *build
			}
			if len(p.Build.Artifacts) > 0 {
				merged.Artifacts = p.Build.Artifacts
			}
			if p.Build.Local != nil {
				merged.Local = p.Build.Local
			}
			if p.Build.TagPolicy != nil {
				merged.TagPolicy = p.Build.TagPolicy
			}
			build = &merged
		}
		if p.Deploy != nil && p.Deploy.Helm != nil {
			deploy = &deployConfig{Helm: p.Deploy.Helm}
		}
	}
	v := &View{Layer: l, Profile: profileName}
	layerDir := filepath.Join(filepath.Dir(RootFile), l.Dir)
	if build != nil {
		for _, a := range build.Artifacts {
			art := Artifact{Image: a.Image, Context: a.Context, Dockerfile: "Dockerfile", Raw: a.raw}
			if a.Docker != nil && a.Docker.Dockerfile != "" {
				art.Dockerfile = a.Docker.Dockerfile
			}
			if a.Docker != nil && len(a.Docker.BuildArgs) > 0 {
				art.BuildArgs = map[string]string{}
				for k, v := range a.Docker.BuildArgs {
					if v != nil {
						art.BuildArgs[k] = *v
					}
				}
			}
			v.Artifacts = append(v.Artifacts, art)
		}
		if build.Local != nil {
			v.Push = build.Local.Push != nil && *build.Local.Push
			v.Buildkit = build.Local.UseBuildkit != nil && *build.Local.UseBuildkit
		}
		if tp := build.TagPolicy; tp != nil {
			switch {
			case tp.GitCommit != nil:
				v.TagPolicy = "gitCommit"
			case tp.InputDigest != nil:
				v.TagPolicy = "inputDigest"
			case tp.Sha256 != nil:
				v.TagPolicy = "sha256"
			}
		}
	}
	if deploy != nil && deploy.Helm != nil {
		for _, r := range deploy.Helm.Releases {
			rel := Release{Name: r.Name, Namespace: r.Namespace, Version: r.Version, Templates: r.SetValueTemplates,
				CreateNamespace:    r.CreateNamespace != nil && *r.CreateNamespace,
				BuildsDependencies: r.SkipBuildDependencies == nil || !*r.SkipBuildDependencies, Raw: r.raw}
			if r.RemoteChart != "" {
				rel.Chart, rel.Remote = r.RemoteChart, true
			} else if r.ChartPath != "" {
				rel.Chart = filepath.Join(layerDir, r.ChartPath)
			}
			for _, f := range r.ValuesFiles {
				rel.ValuesFiles = append(rel.ValuesFiles, filepath.Join(layerDir, f))
			}
			v.Releases = append(v.Releases, rel)
		}
		v.Before = hooks(layerDir, deploy.Helm.Hooks.Before)
		v.After = hooks(layerDir, deploy.Helm.Hooks.After)
	}
	return v, nil
}

func activated(p profile, env func(string) string) bool {
	if len(p.Activation) == 0 || env == nil {
		return false
	}
	for _, a := range p.Activation {
		k, want, ok := strings.Cut(a.Env, "=")
		if !ok || env(k) != want {
			return false
		}
	}
	return true
}

func hooks(layerDir string, items []hookItem) []Hook {
	var hs []Hook
	for _, h := range items {
		if h.Host != nil {
			hook := Hook{Command: h.Host.Command}
			if h.Host.Dir != "" {
				hook.Dir = filepath.Join(layerDir, h.Host.Dir)
			}
			hs = append(hs, hook)
		}
	}
	return hs
}

// Images are the artifact images of every layer under a profile, sorted.
func (s *Stack) Images(profile string) []string {
	var imgs []string
	for _, l := range s.Layers {
		if v, err := l.View(profile, nil); err == nil {
			for _, a := range v.Artifacts {
				imgs = append(imgs, a.Image)
			}
		}
	}
	sort.Strings(imgs)
	return imgs
}

// APIVersion is the layer file's apiVersion (skaffold/v4beta13).
func (l *Layer) APIVersion() string { return l.raw.APIVersion }
