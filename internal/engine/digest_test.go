package engine

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/stack"
)

// TestDigestCoversHookScripts: a layer's digest changes with the scripts
// its hooks call and with the library they source, and not with a script
// only another layer calls.
func TestDigestCoversHookScripts(t *testing.T) {
	dir, s := platformCopy(t)
	inputs := func(layer string) Inputs {
		t.Helper()
		l := s.Layer(layer)
		if l == nil {
			t.Fatalf("no layer %s", layer)
		}
		v, err := l.View("dev", nil)
		if err != nil {
			t.Fatal(err)
		}
		in, err := layerInputs(dir, v, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	const core = "alt-core-services" // calls scripts/kube and scripts/check-secret
	before := inputs(core)
	for _, f := range []string{"file:scripts/kube", "file:scripts/check-secret", "file:scripts/lib/kube.sh"} {
		if _, ok := before[f]; !ok {
			t.Errorf("the inputs of %s lack %s: %v", core, f, before)
		}
	}
	if _, ok := before["file:scripts/can-create"]; ok {
		t.Errorf("the inputs of %s hold scripts/can-create, which only alt-foundation calls", core)
	}
	edit := func(rel string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, append(b, "\n# edited\n"...), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		file    string
		changes bool
	}{
		{"scripts/can-create", false},
		{"scripts/check-secret", true},
		{"scripts/lib/kube.sh", true},
	} {
		edit(c.file)
		after := inputs(core)
		changed := after.Changed(before)
		if got := slices.Contains(changed, "file:"+c.file); got != c.changes || (after.Digest() != before.Digest()) != c.changes {
			t.Errorf("after editing %s: changed inputs %v, digest %s → %s; want a change: %v", c.file, changed, before.Digest(), after.Digest(), c.changes)
		}
		before = after
	}
}

// TestDigestCoversChartLibrary: every layer whose charts use the library
// chart (charts/common) gets a new digest when the library changes, and
// vendoring it into the charts (charts/<x>/charts/common-*.tgz, written
// by the engine and by `helm dependency build`) changes none.
func TestDigestCoversChartLibrary(t *testing.T) {
	dir, s := platformCopy(t)
	digests := func() map[string]Inputs {
		t.Helper()
		m := map[string]Inputs{}
		for _, l := range s.Layers {
			v, err := l.View("dev", nil)
			if err != nil {
				t.Fatal(err)
			}
			if m[l.Name], err = layerInputs(dir, v, nil, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	before := digests()
	for layer, in := range before {
		if _, ok := in["file:charts/common/templates/_names.tpl"]; !ok {
			t.Errorf("the inputs of %s lack charts/common/templates/_names.tpl", layer)
		}
	}
	if err := charts.Vendor(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "charts/service/Chart.lock"), []byte("generated: now\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vendored := digests()
	for layer, in := range vendored {
		if in.Digest() != before[layer].Digest() {
			t.Errorf("vendoring changed the digest of %s: %v", layer, in.Changed(before[layer]))
		}
	}
	p := filepath.Join(dir, "charts/common/templates/_labels.tpl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(b, "\n{{/* edited */}}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	for layer, in := range digests() {
		if in.Digest() == before[layer].Digest() || !slices.Equal(in.Changed(before[layer]), []string{"file:charts/common/templates/_labels.tpl"}) {
			t.Errorf("after editing charts/common/templates/_labels.tpl, %s: changed inputs %v", layer, in.Changed(before[layer]))
		}
	}
}

// platformCopy is a copy of this repository's platform files in a
// temporary folder, and its stack.
func platformCopy(t *testing.T) (string, *stack.Stack) {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := CopyPlatform(repo, dir); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, s
}
