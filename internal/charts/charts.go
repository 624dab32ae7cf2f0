// Package charts knows how the repository's charts depend on one another:
// each chart of charts/ depends on the library chart charts/common by a
// local path (`repository: file://../common` in its Chart.yaml). Helm
// renders a chart only when each dependency is present in the chart's own
// charts/ folder, so Vendor writes it there, as the archive
// `helm dependency build` would write (charts/<x>/charts/common-0.1.0.tgz),
// before any helm or skaffold run. The archives are git-ignored: built from
// the library's files, with fixed times, written only when their bytes
// change, so they are the same on every machine and a deploy's digest
// covers the library's files (Files), not the archives.
package charts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Dir is the folder of the charts, relative to the repository root.
const Dir = "charts"

// Dep is one local (file://) dependency of a chart.
type Dep struct {
	Name    string
	Version string
	// Path is the dependency's folder relative to the repository root
	// (charts/common).
	Path string
	// Archive is where Vendor writes it, relative to the repository root
	// (charts/<x>/charts/common-0.1.0.tgz).
	Archive string
}

type chartFile struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	Dependencies []struct {
		Name       string `json:"name"`
		Version    string `json:"version"`
		Repository string `json:"repository"`
		Alias      string `json:"alias"`
	} `json:"dependencies"`
}

func readChart(repo, chart string) (*chartFile, error) {
	file := filepath.Join(chart, "Chart.yaml")
	b, err := os.ReadFile(filepath.Join(repo, file))
	if err != nil {
		return nil, err
	}
	var c chartFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %v", file, err)
	}
	return &c, nil
}

// IsLibrary says whether the chart (a folder relative to the repository
// root) is a library chart (type: library): it renders nothing itself and
// is deployed through the charts that depend on it.
func IsLibrary(repo, chart string) bool {
	c, err := readChart(repo, chart)
	return err == nil && c.Type == "library"
}

// Deps are the local dependencies of a chart (a folder relative to the
// repository root). A dependency from a chart repository is an error
// naming it: nothing here can fetch one offline.
func Deps(repo, chart string) ([]Dep, error) {
	c, err := readChart(repo, chart)
	if err != nil {
		return nil, err
	}
	file := filepath.ToSlash(filepath.Join(chart, "Chart.yaml"))
	var deps []Dep
	for i, d := range c.Dependencies {
		where := fmt.Sprintf("%s: dependencies[%d] (%s)", file, i, d.Name)
		local, ok := strings.CutPrefix(d.Repository, "file://")
		if !ok {
			return nil, fmt.Errorf("%s: repository %q: only a local chart (file://../<chart>) can be used offline", where, d.Repository)
		}
		dir := filepath.ToSlash(filepath.Clean(filepath.Join(chart, local)))
		dc, err := readChart(repo, dir)
		if err != nil {
			return nil, fmt.Errorf("%s: repository %s: %w", where, d.Repository, err)
		}
		if dc.Name != d.Name {
			return nil, fmt.Errorf("%s: repository %s holds chart %q, not %q", where, d.Repository, dc.Name, d.Name)
		}
		if d.Version == "" {
			return nil, fmt.Errorf("%s: version: empty; expected the version in %s/Chart.yaml", where, dir)
		}
		deps = append(deps, Dep{Name: d.Name, Version: d.Version, Path: dir,
			Archive: path.Join(filepath.ToSlash(chart), "charts", fmt.Sprintf("%s-%s.tgz", d.Name, d.Version))})
	}
	return deps, nil
}

// vendored says whether a file of a chart (relative to the chart folder,
// slash-separated) is what dependency management writes: a dependency in
// charts/ of one of deps, or Chart.lock.
func vendored(rel string, deps []Dep) bool {
	if rel == "Chart.lock" {
		return true
	}
	sub, ok := strings.CutPrefix(rel, "charts/")
	if !ok {
		return false
	}
	for _, d := range deps {
		if sub == d.Name || strings.HasPrefix(sub, d.Name+"/") || (strings.HasPrefix(sub, d.Name+"-") && strings.HasSuffix(sub, ".tgz")) {
			return true
		}
	}
	return false
}

// Files are the files a chart is made of, relative to the repository root
// and sorted: its own files (without what Vendor or `helm dependency
// build` write into it) and the files of each local dependency.
func Files(repo, chart string) ([]string, error) {
	deps, err := Deps(repo, chart)
	if err != nil {
		return nil, err
	}
	var files []string
	err = filepath.WalkDir(filepath.Join(repo, chart), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(filepath.Join(repo, chart), p)
		if err != nil {
			return err
		}
		if !vendored(filepath.ToSlash(rel), deps) {
			files = append(files, filepath.ToSlash(filepath.Join(chart, rel)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		sub, err := Files(repo, d.Path)
		if err != nil {
			return nil, fmt.Errorf("dependency %s of %s: %w", d.Name, chart, err)
		}
		files = append(files, sub...)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// List is every chart of charts/ (a folder with a Chart.yaml), as
// repository paths ("charts/service"), sorted.
func List(repo string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(repo, Dir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Dir, err)
	}
	var out []string
	for _, e := range entries {
		chart := path.Join(Dir, e.Name())
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(repo, chart, "Chart.yaml")); err == nil {
			out = append(out, chart)
		}
	}
	return out, nil
}

// Vendor writes, for every chart of charts/, each local dependency into
// the chart's charts/ folder as the archive Helm expects there, and
// removes other versions of it. An archive already holding the same bytes
// is left alone, so concurrent runs and file watchers see no change.
func Vendor(repo string) error {
	all, err := List(repo)
	if err != nil {
		return err
	}
	var errs []error
	archives := map[string][]byte{}
	for _, chart := range all {
		deps, err := Deps(repo, chart)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, d := range deps {
			b, ok := archives[d.Path]
			if !ok {
				if b, err = Archive(repo, d); err != nil {
					errs = append(errs, fmt.Errorf("dependency %s of %s: %w", d.Name, chart, err))
					continue
				}
				archives[d.Path] = b
			}
			if err := write(repo, d, b); err != nil {
				errs = append(errs, fmt.Errorf("dependency %s of %s: %w", d.Name, chart, err))
			}
		}
	}
	return errors.Join(errs...)
}

// write puts an archive in place (atomically, only when its bytes differ)
// and removes the dependency's other versions.
func write(repo string, d Dep, b []byte) error {
	dst := filepath.Join(repo, d.Archive)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stale, _ := filepath.Glob(filepath.Join(dir, d.Name+"-*.tgz"))
	for _, f := range stale {
		if f != dst {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, b) {
		return nil
	}
	tmp, err := os.CreateTemp(dir, "."+d.Name+"-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// Archive is the dependency packed as Helm packs a chart: a gzipped tar of
// its files under the folder <name>/, without what its .helmignore
// excludes. Entries are sorted and carry no time, owner or mode of the
// machine, so equal files give equal bytes.
func Archive(repo string, d Dep) ([]byte, error) {
	root := filepath.Join(repo, d.Path)
	ignore, err := readIgnore(filepath.Join(root, ".helmignore"))
	if err != nil {
		return nil, err
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(ignore, rel, e.IsDir()) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		h := &tar.Header{Name: d.Name + "/" + f, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readIgnore reads the patterns of a .helmignore (none when it is absent).
func readIgnore(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pats []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		pats = append(pats, l)
	}
	return pats, nil
}

// ignored applies the subset of .helmignore rules the library chart uses:
// a pattern ending in "/" matches a folder by name, any other pattern
// matches a file or folder by its base name or its whole path (no "!"
// negation, no "**").
func ignored(pats []string, rel string, dir bool) bool {
	base := path.Base(rel)
	for _, p := range pats {
		if d, ok := strings.CutSuffix(p, "/"); ok {
			if dir {
				if m, _ := path.Match(d, base); m {
					return true
				}
			}
			continue
		}
		if m, _ := path.Match(p, base); m {
			return true
		}
		if m, _ := path.Match(p, rel); m {
			return true
		}
	}
	return false
}
