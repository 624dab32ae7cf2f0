package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/alt-platform/orchestration/internal/charts"
)

var imageVar = regexp.MustCompile(`\{\{\s*\.IMAGE_(?:REPO|TAG|DIGEST|FULLY_QUALIFIED|DOMAIN|REPO_NO_DOMAIN)_([A-Za-z0-9_]+)\s*\}\}`)

// LoadAll loads the Skaffold files of repo and the Mage graph of its
// magefiles and validates them together: every problem is in the error.
// The stack and the graph are returned when they could be read, even when
// they do not agree.
func LoadAll(repo string) (*Stack, *Graph, error) {
	s, err := Load(repo)
	if err != nil {
		return nil, nil, err
	}
	g, err := MageGraph(filepath.Join(repo, "magefiles"))
	if err != nil {
		return s, nil, err
	}
	return s, g, Validate(s, g)
}

// Validate checks the stack against the Mage graph and reports every
// problem at once (nil when there is none).
func Validate(s *Stack, g *Graph) error {
	var ps Problems
	add := func(file, field, format string, a ...any) {
		ps = append(ps, Problem{File: file, Where: field, Msg: fmt.Sprintf(format, a...)})
	}

	ps = append(ps, s.unknown...)
	seen := map[string]string{}
	for i, l := range s.Layers {
		field := fmt.Sprintf("requires[%d]", i)
		if l.raw.APIVersion != SchemaVersion || l.raw.Kind != "Config" {
			add(l.File, "apiVersion/kind", "expected apiVersion %s (the schema its fields are checked against) and kind Config, got %q/%q", SchemaVersion, l.raw.APIVersion, l.raw.Kind)
		}
		if l.Name == "" {
			add(l.File, "metadata.name", "empty; every layer needs a unique config name (e.g. alt-foundation)")
		} else if prev, dup := seen[l.Name]; dup {
			add(l.File, "metadata.name", "%q is also the name of %s (%s); names must be unique", l.Name, prev, field)
		} else {
			seen[l.Name] = l.File
		}
		if len(l.raw.Requires) > 0 {
			add(l.File, "requires", "a layer config must not require others; the root %s orders layers and the Mage targets hold the graph", RootFile)
		}
		for _, p := range profileNames {
			if !slices.Contains(l.Profiles, p) {
				add(l.File, "profiles", "no profile %q; every layer defines %s", p, strings.Join(profileNames, ", "))
			}
		}
		for _, p := range l.Profiles {
			if !slices.Contains(profileNames, p) {
				add(l.File, fmt.Sprintf("profiles[%s]", p), "unknown profile; expected only %s (or an env-activated profile)", strings.Join(profileNames, ", "))
			}
		}
		for _, p := range l.Profiles {
			v, err := l.View(p, nil)
			if err != nil {
				continue
			}
			ps = append(ps, validateView(s.Repo, v)...)
		}
		for name := range l.Conditional {
			v, err := l.View("dev", func(k string) string { return activationValue(l, name, k) })
			if err == nil {
				ps = append(ps, validateView(s.Repo, v)...)
			}
		}
		ps = append(ps, unusedValues(s.Repo, l)...)
	}

	ps = append(ps, validateGraph(s, g)...)
	return ps.Err()
}

// activationValue satisfies the activation of profile name, for validating
// what that profile renders.
func activationValue(l *Layer, name, key string) string {
	for _, p := range l.raw.Profiles {
		if p.Name != name {
			continue
		}
		for _, a := range p.Activation {
			if k, v, ok := strings.Cut(a.Env, "="); ok && k == key {
				return v
			}
		}
	}
	return ""
}

func validateView(repo string, v *View) Problems {
	var ps Problems
	file := v.Layer.File
	pf := func(rest string) string { return fmt.Sprintf("profiles[%s].%s", v.Profile, rest) }
	add := func(field, format string, a ...any) {
		ps = append(ps, Problem{File: file, Where: field, Msg: fmt.Sprintf(format, a...)})
	}
	exists := func(rel string) bool { _, err := os.Stat(filepath.Join(repo, rel)); return err == nil }

	artifacts := map[string]bool{}
	for _, a := range v.Artifacts {
		field := pf(fmt.Sprintf("build.artifacts[%s]", a.Image))
		if a.Image == "" {
			add(pf("build.artifacts"), "an artifact has no image name")
			continue
		}
		artifacts[ArtifactVar(a.Image)] = false
		if a.Context == "" {
			add(field+".context", "empty; expected a folder of the Alt source checkout, e.g. ../../.alt-src/%s", a.Image)
		}
	}
	if len(v.Artifacts) > 0 && v.TagPolicy != "gitCommit" {
		add(pf("build.tagPolicy"), "%q; every layer uses the one tag policy gitCommit", v.TagPolicy)
	}
	if len(v.Artifacts) > 0 && !v.Buildkit {
		add(pf("build.local.useBuildkit"), "false or unset; builds use BuildKit")
	}
	if len(v.Releases) == 0 {
		add(pf("deploy.helm.releases"), "empty; a layer deploys at least one Helm release")
	}
	names := map[string]bool{}
	for _, r := range v.Releases {
		field := pf(fmt.Sprintf("deploy.helm.releases[%s]", r.Name))
		if r.Name == "" {
			add(pf("deploy.helm.releases"), "a release has no name")
		}
		if names[r.Name] {
			add(field+".name", "release name used twice in this layer")
		}
		names[r.Name] = true
		if r.Namespace == "" {
			add(field+".namespace", "empty; every release names its namespace (created by 01-foundation)")
		}
		if r.CreateNamespace {
			add(field+".createNamespace", "true; namespaces are created only by 01-foundation")
		}
		switch {
		case r.Chart == "":
			add(field+".chartPath", "empty; expected a chart folder under charts/ or a remoteChart")
		case r.Remote && r.Version == "":
			add(field+".version", "empty; a remoteChart is pinned to an exact version")
		case !r.Remote && !exists(filepath.Join(r.Chart, "Chart.yaml")):
			add(field+".chartPath", "%s has no Chart.yaml", r.Chart)
		case !r.Remote:
			if _, err := charts.Deps(repo, r.Chart); err != nil {
				add(field+".chartPath", "%v", err)
			}
			if r.BuildsDependencies {
				add(field+".skipBuildDependencies", "not true; Skaffold would run `helm dependency build` in %s at every deploy, rewriting the vendored library and Chart.lock while other layers read them; the engine vendors each chart's local dependencies (charts/common) before any helm or skaffold run", r.Chart)
			}
		}
		for i, f := range r.ValuesFiles {
			if !exists(f) {
				add(fmt.Sprintf("%s.valuesFiles[%d]", field, i), "%s does not exist", f)
				continue
			}
			// Named by the file, not the profile: dedupe reports it once.
			if b, err := os.ReadFile(filepath.Join(repo, f)); err == nil {
				var values map[string]any
				if err := yaml.Unmarshal(b, &values); err != nil {
					ps = append(ps, Problem{File: f, Where: "content", Msg: fmt.Sprintf("not valid YAML (release %s reads it): %v", r.Name, err)})
				}
			}
		}
		keys := make([]string, 0, len(r.Templates))
		for k := range r.Templates {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, m := range imageVar.FindAllStringSubmatch(r.Templates[k], -1) {
				if _, ok := artifacts[m[1]]; !ok {
					add(fmt.Sprintf("%s.setValueTemplates[%s]", field, k), "%s names no artifact of this layer (artifacts: %s)", m[0], strings.Join(sortedKeys(artifacts), ", "))
					continue
				}
				artifacts[m[1]] = true
			}
		}
	}
	for _, a := range v.Artifacts {
		if used, ok := artifacts[ArtifactVar(a.Image)]; ok && !used {
			add(pf(fmt.Sprintf("build.artifacts[%s]", a.Image)), "not used: no release's setValueTemplates names {{.IMAGE_REPO_%s}}", ArtifactVar(a.Image))
		}
	}
	return ps
}

// unusedValues reports the files of a layer's values/ folder that no
// release of a profile the platform deploys (dev, staging, prod, or an
// env-activated one) reads: a values file for a profile that does not
// exist, or dead weight that no run renders.
func unusedValues(repo string, l *Layer) Problems {
	dir := filepath.Join(filepath.Dir(RootFile), l.Dir, "values")
	entries, err := os.ReadDir(filepath.Join(repo, dir))
	if err != nil {
		return nil
	}
	used := map[string]bool{}
	onlyBy := map[string][]string{} // file → unknown profiles whose releases read it
	addView := func(v *View, known bool) {
		for _, r := range v.Releases {
			for _, f := range r.ValuesFiles {
				if known {
					used[f] = true
				} else if !slices.Contains(onlyBy[f], v.Profile) {
					onlyBy[f] = append(onlyBy[f], v.Profile)
				}
			}
		}
	}
	for _, p := range l.Profiles {
		if v, err := l.View(p, nil); err == nil {
			addView(v, slices.Contains(profileNames, p))
		}
	}
	for name := range l.Conditional {
		if v, err := l.View("dev", func(k string) string { return activationValue(l, name, k) }); err == nil {
			addView(v, true)
		}
	}
	var ps Problems
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		f := filepath.Join(dir, e.Name())
		switch {
		case used[f]:
		case len(onlyBy[f]) > 0:
			ps = append(ps, Problem{File: f, Where: "valuesFiles", Msg: fmt.Sprintf("read only by profile %s of %s, which is not a profile of the platform (%s)", strings.Join(onlyBy[f], ", "), l.File, strings.Join(profileNames, ", "))})
		default:
			ps = append(ps, Problem{File: f, Where: "valuesFiles", Msg: fmt.Sprintf("no release of %s reads it in any profile (%s); delete it, or name it in a release's valuesFiles", l.File, strings.Join(profileNames, ", "))})
		}
	}
	return ps
}

func validateGraph(s *Stack, g *Graph) Problems {
	var ps Problems
	const mage = "magefiles"
	add := func(file, field, format string, a ...any) {
		ps = append(ps, Problem{File: file, Where: field, Msg: fmt.Sprintf(format, a...)})
	}
	pos := map[string]int{}
	for i, l := range s.Layers {
		pos[l.Name] = i
		if _, ok := g.Needs[l.Name]; !ok && l.Name != "" {
			add(mage, "targets", "no Mage target deploys layer %s (%s); add one that calls %s(ctx, %q)", l.Name, l.File, LayerCall, l.Name)
		}
	}
	fileOf := func(l string) string {
		if f := g.File[l]; f != "" {
			return f
		}
		return mage
	}
	for _, l := range g.Layers() {
		if _, ok := pos[l]; !ok {
			add(fileOf(l), g.Target[l], "deploys layer %q, which %s does not require", l, RootFile)
		}
	}
	if c := g.Cycle(); c != nil {
		targets := make([]string, len(c)-1)
		for i, l := range c[:len(c)-1] {
			targets[i] = g.Target[l]
		}
		add(fileOf(c[0]), g.Target[c[0]]+" mg.Deps", "the layer graph has a cycle: %s (the mg.Deps of targets %s)", strings.Join(c, " -> "), strings.Join(targets, ", "))
	}
	for _, l := range g.Layers() {
		for _, n := range g.Needs[l] {
			pl, okl := pos[l]
			pn, okn := pos[n]
			if okl && okn && pn > pl {
				add(RootFile, fmt.Sprintf("requires[%d]", pl), "%s needs %s (Mage target %s), which is required later at requires[%d]; requires must follow the layer graph", l, n, g.Target[l], pn)
			}
		}
	}
	return ps
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
