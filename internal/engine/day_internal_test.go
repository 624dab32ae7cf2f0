package engine

import (
	"slices"

	"github.com/alt-platform/orchestration/internal/config"
	"strings"
	"testing"
)

func TestDownRefusesOtherClustersUnlessForced(t *testing.T) {
	prod := &config.Config{Profile: "prod", Cluster: config.ClusterContext, KubeContext: "prod-eu"}
	for _, c := range []struct {
		cfg   *config.Config
		r     Recognised
		allow bool
	}{
		{&config.Config{Profile: "dev", Cluster: config.ClusterSim}, Recognised{Kind: config.ClusterSim}, true},
		{&config.Config{Profile: "dev", Cluster: config.ClusterKind}, Recognised{Kind: config.ClusterKind}, true},
		{prod, Recognised{}, false},
		{&config.Config{Profile: "prod", Cluster: config.ClusterContext, KubeContext: "prod-eu", ForceContext: "staging-eu"}, Recognised{}, false},
		{&config.Config{Profile: "prod", Cluster: config.ClusterContext, KubeContext: "prod-eu", ForceContext: "prod-eu"}, Recognised{}, true},
	} {
		err := downGuard(c.cfg, c.r)
		if (err == nil) != c.allow {
			t.Errorf("%+v on %+v: %v", c.cfg, c.r, err)
		}
		if err != nil && !strings.Contains(err.Error(), "ALT_FORCE_CONTEXT=prod-eu") {
			t.Errorf("the refusal does not name the variable and its value: %v", err)
		}
	}
}

func TestLayersAndServicesByName(t *testing.T) {
	quiet(t)
	e := newWorld(t).run(t, "status")
	for _, name := range []string{"operations", "alt-operations", "08-operations", "08", "Operations"} {
		if l, err := e.FindLayer(name); err != nil || l != "alt-operations" {
			t.Errorf("FindLayer(%q) = %q, %v", name, l, err)
		}
	}
	if _, err := e.FindLayer("03"); err == nil || !strings.Contains(err.Error(), "the layers are: foundation, infrastructure,") {
		t.Errorf("FindLayer(03): %v", err)
	}
	// What needs 02 goes down with it; 01 does not.
	got := e.dependants("alt-infrastructure")
	slices.Sort(got)
	if want := "alt-application alt-auth-platform alt-core-services alt-infrastructure alt-operations alt-processing"; strings.Join(got, " ") != want {
		t.Errorf("dependants of 02: %v", got)
	}
	if got := e.dependants("alt-operations"); len(got) != 1 {
		t.Errorf("dependants of 08: %v", got)
	}
	ss, err := e.FindServices("alt-backend,monitoring", "alt-backend")
	if err != nil || len(ss) != 2 || ss[0].Layer != "alt-core-services" || ss[1].Layer != "alt-operations" {
		t.Errorf("FindServices: %+v, %v", ss, err)
	}
	if _, err := e.FindServices("alt-backend,nosuch"); err == nil || !strings.Contains(err.Error(), "unknown service nosuch") ||
		!strings.Contains(err.Error(), "kratos, kratos-postgres") {
		t.Errorf("FindServices(nosuch): %v", err)
	}
}

func TestRedeployRunsALayerAgainEachTimeItChanged(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	if _, err := w.deployAll(t); err != nil {
		t.Fatal(err)
	}
	e := w.run(t, "watch", "monitoring")
	w.cmds = nil
	for i, want := range []Action{Unchanged, Deployed, Deployed} {
		if i > 0 {
			// A saved file: the recorded digest no longer matches.
			rec := w.records["alt-operations"]
			rec.Digest = "old"
			w.records["alt-operations"] = rec
		}
		res, err := e.Redeploy(t.Context(), "alt-operations")
		if err != nil || res.Action != want {
			t.Fatalf("redeploy %d: %v, %v; want %s", i, res, err, want)
		}
	}
	if n := w.ran("skaffold deploy"); n != 2 || w.ran("skaffold deploy -f skaffold.yaml -m alt-operations") != 2 {
		t.Errorf("ran %v, want two deploys of alt-operations only", w.cmds)
	}
}

func TestWatchSeesChangedAddedAndRemovedFilesOfEachLayer(t *testing.T) {
	before := map[string][]string{
		"charts/service/values.yaml":                        {"alt-core-services", "alt-auth-platform"},
		"charts/service/templates/a.yaml":                   {"alt-core-services", "alt-auth-platform"},
		"skaffold/04-core-services/values/alt-backend.yaml": {"alt-core-services"},
	}
	old := map[string]string{"charts/service/values.yaml": "1", "charts/service/templates/a.yaml": "2",
		"skaffold/04-core-services/values/alt-backend.yaml": "3"}
	if got := changedLayers(old, old, before, before); len(got) != 0 {
		t.Errorf("nothing changed, yet %v", got)
	}
	after := map[string][]string{
		"charts/service/values.yaml":                        before["charts/service/values.yaml"],
		"charts/service/templates/b.yaml":                   before["charts/service/templates/a.yaml"],
		"skaffold/04-core-services/values/alt-backend.yaml": {"alt-core-services"},
	}
	now := map[string]string{"charts/service/values.yaml": "1", "charts/service/templates/b.yaml": "4",
		"skaffold/04-core-services/values/alt-backend.yaml": "5"}
	got := changedLayers(old, now, before, after)
	want := map[string]string{
		"alt-core-services": "charts/service/templates/a.yaml charts/service/templates/b.yaml skaffold/04-core-services/values/alt-backend.yaml",
		"alt-auth-platform": "charts/service/templates/a.yaml charts/service/templates/b.yaml",
	}
	if len(got) != len(want) {
		t.Errorf("changed %v", got)
	}
	for l, fs := range want {
		if strings.Join(got[l], " ") != fs {
			t.Errorf("%s: %v, want %s", l, got[l], fs)
		}
	}
}
