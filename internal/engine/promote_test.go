package engine_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/stack"
)

// Promotion by digest on two sim clusters (the tests' switch of the
// profile guard): staging deploys and writes the release file, every
// reference pinned by digest; prod, on another cluster, refuses a file
// that is missing, lacks an image or holds a reference not pinned by
// digest, changing nothing; `promote` then runs byte-identical references
// to staging's, taken from the file; a new digest in the file is deployed and
// nothing else is.
func TestPromote(t *testing.T) {
	stg, prd := newPlatform(t), newPlatform(t)
	needs := fileNeeds(t, stg)
	// The Secret meilisearch's keys Job makes in the cluster (no
	// container runs on sim): made as that Job would.
	keysJob := func(p *platform) {
		p.kubectl("create", "secret", "generic", "meilisearch-search-indexer-key", "-n", "alt-processing", "--from-literal=api-key=made-as-the-keys-job-would")
	}
	release := filepath.Join(t.TempDir(), "staging.json")

	// Staging: deploy, then the release file.
	s := newProfileEnv(t, "staging", needs)
	s.env = append(s.env, "ALT_RELEASE="+release)
	s.write(t, stg)
	if out, err := stg.mage(s.env, "infrastructure"); err != nil {
		t.Fatalf("staging infrastructure: %v\n%s", err, out)
	}
	keysJob(stg)
	out, err := stg.mage(s.env, "all")
	if err != nil {
		t.Fatalf("staging all: %v", err)
	}
	if !strings.Contains(out, "release file "+release) {
		t.Errorf("staging does not say it wrote the release file")
	}
	rel, err := engine.ReadRelease(release)
	if err != nil {
		t.Fatalf("the release file staging wrote: %v", err)
	}
	staged := images(stg)
	if len(rel.Images) == 0 || len(rel.Layers) != len(layers) {
		t.Fatalf("release file: %d images, layers %v", len(rel.Images), rel.Layers)
	}
	for _, ref := range rel.Images {
		if !staged[ref] {
			t.Errorf("the release file names %s, which no staging workload runs", ref)
		}
	}

	// Prod: refusals first, each before anything is touched.
	pe := newProfileEnv(t, "prod", needs)
	pe.write(t, prd)
	prodRun := func(file string, targets ...string) (string, error) {
		return prd.mage(append(append([]string{}, pe.env...), "ALT_RELEASE="+file), targets...)
	}
	writeRelease := func(change func(*engine.Release)) string {
		r := *rel
		r.Images = map[string]string{}
		for k, v := range rel.Images {
			r.Images[k] = v
		}
		change(&r)
		b, _ := json.Marshal(r)
		path := filepath.Join(t.TempDir(), "release.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	backend := "kaikei/alt-backend"
	if _, ok := rel.Images[backend]; !ok {
		t.Fatalf("no %s in the release file: %v", backend, rel.Images)
	}
	for _, c := range []struct {
		name, file, want string
		targets          []string
	}{
		{"no file", filepath.Join(t.TempDir(), "none.json"), "no release file", []string{"promote"}},
		{"a tag, no digest", writeRelease(func(r *engine.Release) { r.Images[backend] = backend + ":v1" }),
			"images." + backend + `: "` + backend + `:v1" is not pinned by digest`, []string{"promote"}},
		{"an image missing", writeRelease(func(r *engine.Release) { delete(r.Images, backend) }),
			"lacks images." + backend + " (alt-core-services)", []string{"promote"}},
		{"a layer target too", writeRelease(func(r *engine.Release) { r.Images[backend] = backend + ":v1" }),
			"is not pinned by digest", []string{"coreServices"}},
		{"not staging's", writeRelease(func(r *engine.Release) { r.Profile = "dev" }), `profile "dev"`, []string{"promote"}},
	} {
		out, err := prodRun(c.file, c.targets...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: err %v, the refusal does not say %q", c.name, err, c.want)
		}
		if !strings.Contains(out, c.file) {
			t.Errorf("%s: the refusal does not name the file", c.name)
		}
	}
	if out, err := prd.mage(s.env, "promote"); err == nil || !strings.Contains(out, `ALT_PROFILE is "staging"`) {
		t.Errorf("promote with ALT_PROFILE=staging: %v", err)
	}
	if _, err := os.Stat(prd.kube); err == nil {
		t.Fatalf("a refused promote started the prod cluster")
	}

	// The promotion: no build, staging's references byte for byte.
	if out, err := prodRun(release, "infrastructure"); err != nil {
		t.Fatalf("prod infrastructure: %v\n%s", err, out)
	}
	keysJob(prd)
	out, err = prodRun(release, "promote")
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	if !strings.Contains(out, "prod: no image is built") {
		t.Errorf("promote does not say it builds nothing and deploys staging's references")
	}
	if got := sortedSet(images(prd)); !equalLists(got, sortedSet(staged)) {
		t.Errorf("prod runs other references than staging:\nstaging %v\nprod    %v", sortedSet(staged), got)
	}

	// A new digest for alt-backend: its layer and what needs it deploy, the
	// pod runs the new reference, the other layers are unchanged.
	moved := writeRelease(func(r *engine.Release) {
		r.Images[backend] = strings.SplitN(r.Images[backend], "@", 2)[0] + "@sha256:" + strings.Repeat("ab", 32)
	})
	out, err = prodRun(moved, "promote")
	if err != nil {
		t.Fatalf("promote of a new digest: %v", err)
	}
	want := all("unchanged")
	want["alt-core-services"] = "deployed"
	expect(t, out, want)
	if ref := strings.SplitN(rel.Images[backend], "@", 2)[0] + "@sha256:" + strings.Repeat("ab", 32); !images(prd)[ref] {
		t.Errorf("no prod workload runs %s after its promotion", ref)
	}
}

// images are the first-party references (the sim's placeholder tag) of
// every container and init container of the platform's workloads and pods
// (a CronJob's in its job template).
func images(p *platform) map[string]bool {
	out := p.kubectl("get", "deployments,statefulsets,daemonsets,jobs,cronjobs,pods", "-A", "-o", `jsonpath={..image}`)
	refs := map[string]bool{}
	for _, l := range strings.Fields(out) {
		if strings.Contains(l, ":"+stack.PlaceholderTag+"@") {
			refs[l] = true
		}
	}
	return refs
}

func sortedSet(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func equalLists(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }
