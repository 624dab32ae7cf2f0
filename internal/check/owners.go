package check

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
)

// Owners checks that every object has one owner (DESIGN.md, lesson 5):
// per profile, no two releases (nor one release twice) render the same
// object (API group, kind, namespace, name). Helm refuses to adopt an
// object another release owns, and two charts that both write it fight
// over it on every deploy.
func Owners(objs []*Object) error {
	var ps Problems
	order, groups := byProfile(objs)
	for _, p := range order {
		type key struct{ group, kind, ns, name string }
		seen := map[key][]*Object{}
		var keys []key
		for _, o := range groups[p] {
			g, _, _ := strings.Cut(o.APIVersion, "/")
			if !strings.Contains(o.APIVersion, "/") {
				g = ""
			}
			k := key{g, o.Kind, o.Namespace, o.Name}
			if seen[k] == nil {
				keys = append(keys, k)
			}
			seen[k] = append(seen[k], o)
		}
		for _, k := range keys {
			dup := seen[k]
			if len(dup) < 2 {
				continue
			}
			var by []string
			for _, o := range dup[1:] {
				by = append(by, fmt.Sprintf("release %s of layer %s (%s)", o.Release, o.Layer, o.Source))
			}
			ps = append(ps, dup[0].problem("also rendered by %s: one owner per object; keep it in one chart", strings.Join(by, ", ")))
		}
	}
	return ps.Err()
}

// Deployed checks that every chart under charts/ is deployed (DESIGN.md,
// lesson 10: what is in the repository is deployed and tested): it is the
// chart of a release of some layer in some profile, or a library chart such
// a chart depends on.
func Deployed(s *stack.Stack) error {
	used := map[string]bool{}
	for _, l := range s.Layers {
		var profiles []string
		profiles = append(profiles, l.Profiles...)
		for p := range l.Conditional {
			profiles = append(profiles, p)
		}
		for _, p := range profiles {
			v, err := l.View(p, nil)
			if err != nil {
				continue
			}
			for _, r := range v.Releases {
				if !r.Remote {
					used[filepath.ToSlash(r.Chart)] = true
				}
			}
		}
	}
	// A library chart (charts/common) is deployed through the charts that
	// depend on it.
	var ps Problems
	for chart := range maps.Clone(used) {
		deps, err := charts.Deps(s.Repo, chart)
		if err != nil {
			ps = append(ps, Problem{File: chart + "/Chart.yaml", Msg: err.Error()})
			continue
		}
		for _, d := range deps {
			used[d.Path] = true
		}
	}
	all, err := charts.List(s.Repo)
	if err != nil {
		return err
	}
	for _, chart := range all {
		if used[chart] {
			continue
		}
		msg := "no release of any layer deploys this chart in any profile: dead weight; deploy it (a release in skaffold/) or delete it"
		if charts.IsLibrary(s.Repo, chart) {
			msg = "no deployed chart depends on this library chart (dependencies in its Chart.yaml): dead weight; use it or delete it"
		}
		ps = append(ps, Problem{File: chart + "/Chart.yaml", Msg: msg})
	}
	return ps.Err()
}

// Committed checks that everything a profile renders from is committed
// (DESIGN.md, lesson 2: Alt's prod values files were git-ignored, so a
// fresh clone could not render prod): no Skaffold file, values file or
// chart file of any release of any profile is ignored by git. Outside a
// git work tree (a copy of the platform) it is a note.
func Committed(ctx context.Context, r *run.Runner, s *stack.Stack) (*Note, error) {
	if r == nil {
		r = &run.Runner{}
	}
	if out, err := r.Output(ctx, "git", "-C", s.Repo, "rev-parse", "--show-toplevel"); err != nil || !samePath(strings.TrimSpace(out), s.Repo) {
		return &Note{Check: "committed", What: "git-ignored inputs", Why: s.Repo + " is not the top of a git work tree"}, nil
	}
	files := map[string][]string{} // file → profiles
	for _, l := range s.Layers {
		for _, p := range l.Profiles {
			v, err := l.View(p, nil)
			if err != nil {
				continue
			}
			add := func(f string) { files[filepath.ToSlash(f)] = append(files[filepath.ToSlash(f)], p) }
			add(l.File)
			for _, rel := range v.Releases {
				for _, f := range rel.ValuesFiles {
					add(f)
				}
				if !rel.Remote {
					// The chart's files and its library's, not the
					// git-ignored copy of the library vendored into it.
					fs, err := charts.Files(s.Repo, rel.Chart)
					if err != nil {
						add(rel.Chart)
						continue
					}
					for _, f := range fs {
						add(f)
					}
				}
			}
		}
	}
	paths := sortedMapKeys(files)
	out, err := r.Output(ctx, "git", append([]string{"-C", s.Repo, "ls-files", "--others", "--ignored", "--exclude-standard", "--"}, paths...)...)
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	var ps Problems
	for _, f := range strings.Fields(out) {
		// The profiles of the file, or of the chart folder it is in.
		var prof []string
		for _, p := range paths {
			if f == p || strings.HasPrefix(f, p+"/") {
				prof = append(prof, files[p]...)
			}
		}
		sort.Strings(prof)
		prof = slices.Compact(prof)
		rule, _ := r.Output(ctx, "git", "-C", s.Repo, "check-ignore", "-v", "--", f)
		why := "git ignores it"
		if src, _, ok := strings.Cut(strings.TrimSpace(rule), "\t"); ok {
			why = "git ignores it (" + src + ")"
		}
		ps = append(ps, Problem{File: f, Msg: fmt.Sprintf("%s, so a fresh clone cannot render what reads it; commit it (only secret values stay out of git, and none is in a file)", why), Profiles: prof})
	}
	return nil, ps.Err()
}

func samePath(a, b string) bool {
	if ra, err := filepath.EvalSymlinks(a); err == nil {
		a = ra
	}
	if rb, err := filepath.EvalSymlinks(b); err == nil {
		b = rb
	}
	return filepath.Clean(a) == filepath.Clean(b)
}
