package charts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// repoWith writes files (path → body) into a temporary repository.
func repoWith(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, body := range files {
		f := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var twoCharts = map[string]string{
	"charts/common/Chart.yaml":           "apiVersion: v2\nname: common\ntype: library\nversion: 0.1.0\n",
	"charts/common/.helmignore":          "# editors\n*.swp\n.idea/\n",
	"charts/common/templates/_names.tpl": "{{- define \"common.fullname\" -}}{{ .Release.Name }}{{- end }}\n",
	"charts/common/templates/x.swp":      "editor swap file\n",
	"charts/common/.idea/ws.xml":         "<x/>\n",
	"charts/app/Chart.yaml":              "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 0.1.0\n    repository: file://../common\n",
	"charts/app/templates/cm.yaml":       "kind: ConfigMap\n",
	"charts/plain/Chart.yaml":            "apiVersion: v2\nname: plain\nversion: 0.1.0\n",
}

// entries lists the files of a gzipped tar.
func entries(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// TestVendor: each chart gets its local dependency as the archive Helm
// expects in charts/, without what the library's .helmignore excludes; a
// second Vendor with nothing changed writes nothing; an edit of the
// library rewrites it; an old version is removed.
func TestVendor(t *testing.T) {
	repo := repoWith(t, twoCharts)
	stale := filepath.Join(repo, "charts/app/charts/common-0.0.9.tgz")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Vendor(repo); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(repo, "charts/app/charts/common-0.1.0.tgz")
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"common/.helmignore", "common/Chart.yaml", "common/templates/_names.tpl"}
	if got := entries(t, b); !slices.Equal(got, want) {
		t.Errorf("archive entries %v, want %v", got, want)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the other version %s is still there (%v)", stale, err)
	}
	if _, err := os.Stat(filepath.Join(repo, "charts/plain/charts")); !os.IsNotExist(err) {
		t.Errorf("a chart without dependencies got a charts/ folder")
	}

	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(archive, old, old); err != nil {
		t.Fatal(err)
	}
	if err := Vendor(repo); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(archive); !fi.ModTime().Equal(old) {
		t.Errorf("Vendor rewrote an archive whose bytes did not change")
	}
	b2, _ := os.ReadFile(archive)
	if !bytes.Equal(b, b2) {
		t.Errorf("the same files gave different archive bytes")
	}

	tpl := filepath.Join(repo, "charts/common/templates/_names.tpl")
	if err := os.WriteFile(tpl, []byte("{{- define \"common.fullname\" -}}x{{- end }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Vendor(repo); err != nil {
		t.Fatal(err)
	}
	if b3, _ := os.ReadFile(archive); bytes.Equal(b, b3) {
		t.Errorf("an edit of the library did not reach the vendored archive")
	}
}

// TestFiles: a chart is its own files and its library's, never the copy
// vendored into it nor a Chart.lock.
func TestFiles(t *testing.T) {
	files := map[string]string{
		"charts/app/charts/common-0.1.0.tgz": "vendored",
		"charts/app/Chart.lock":              "generated",
	}
	for k, v := range twoCharts {
		files[k] = v
	}
	repo := repoWith(t, files)
	got, err := Files(repo, "charts/app")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"charts/app/Chart.yaml", "charts/app/templates/cm.yaml",
		"charts/common/.helmignore", "charts/common/.idea/ws.xml", "charts/common/Chart.yaml",
		"charts/common/templates/_names.tpl", "charts/common/templates/x.swp"}
	if !slices.Equal(got, want) {
		t.Errorf("Files = %v\nwant %v", got, want)
	}
}

// TestDepsRefused: what cannot be vendored offline is named with its file
// and field.
func TestDepsRefused(t *testing.T) {
	for _, c := range []struct{ name, chart, want string }{
		{"a chart repository", "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 2.x\n    repository: https://charts.bitnami.com/bitnami\n",
			`charts/app/Chart.yaml: dependencies[0] (common): repository "https://charts.bitnami.com/bitnami": only a local chart`},
		{"a folder holding another chart", "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: lib\n    version: 0.1.0\n    repository: file://../common\n",
			`charts/app/Chart.yaml: dependencies[0] (lib): repository file://../common holds chart "common", not "lib"`},
		{"no version", "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: common\n    repository: file://../common\n",
			"charts/app/Chart.yaml: dependencies[0] (common): version: empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range twoCharts {
				files[k] = v
			}
			files["charts/app/Chart.yaml"] = c.chart
			repo := repoWith(t, files)
			_, err := Deps(repo, "charts/app")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Deps: %v; want %q", err, c.want)
			}
			if err := Vendor(repo); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Vendor: %v; want %q", err, c.want)
			}
		})
	}
}
