package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
	"sigs.k8s.io/yaml"
)

// watchDocs splits the watch config into its documents.
func watchDocs(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for i, part := range strings.Split(string(b), "\n---\n") {
		if err := stack.CheckFields("watch document "+string(rune('0'+i)), []byte(part)); err != nil {
			t.Errorf("Skaffold would reject: %v", err)
		}
		var d map[string]any
		if err := yaml.Unmarshal([]byte(part), &d); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, part)
		}
		docs = append(docs, d)
	}
	return docs
}

func list(m map[string]any, path ...string) []any {
	var cur any = m
	for _, p := range path {
		mm, _ := cur.(map[string]any)
		cur = mm[p]
	}
	l, _ := cur.([]any)
	return l
}

// The config watch runs holds, per layer of the named services, only their
// releases and the images those releases use, every path absolute and
// existing, tagged by content, pushed with BuildKit, no hooks, no
// profiles, and each Service port forwarded once to its own local port.
func TestWatchConfigHoldsOnlyTheNamedServices(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	e := w.run(t, "watch", "alt-backend,auth-service")
	// The build contexts are reached through the ALT_SRC link: point it at
	// a folder of this test, so its path is seen resolved.
	src := t.TempDir()
	for _, d := range []string{"alt-backend", "auth-service"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
	}
	link := filepath.Join(e.Repo, SrcLink)
	old, hadLink := os.Readlink(link)
	os.Remove(link)
	if err := os.Symlink(src, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(link)
		if hadLink == nil {
			os.Symlink(old, link)
		}
	})
	ss, err := e.FindServices("alt-backend,auth-service")
	if err != nil {
		t.Fatal(err)
	}
	fwds := []portForward{{Release: "alt-backend", Namespace: "alt-apps", Service: "alt-backend", Port: 9000, Local: 41001},
		{Release: "auth-service", Namespace: "alt-auth", Service: "auth-service", Port: 8080, Local: 41002}}
	b, images, err := e.watchConfig(ss, fwds)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(images, " ") != "kaikei/alt-backend kaikei/alt-authservice" {
		t.Errorf("images %v, want alt-backend's and auth-service's only (not the sidecar's)", images)
	}
	docs := watchDocs(t, b)
	if len(docs) != 2 {
		t.Fatalf("%d documents, want one per layer:\n%s", len(docs), b)
	}
	for i, c := range []struct{ layer, release, image, ctx, ns string }{
		{"alt-core-services", "alt-backend", "kaikei/alt-backend", "alt-backend", "alt-apps"},
		{"alt-auth-platform", "auth-service", "kaikei/alt-authservice", "auth-service", "alt-auth"},
	} {
		d := docs[i]
		if name, _ := d["metadata"].(map[string]any)["name"].(string); name != c.layer {
			t.Errorf("document %d is %q, want %s", i, name, c.layer)
		}
		for _, gone := range []string{"profiles", "requires"} {
			if d[gone] != nil {
				t.Errorf("%s: has %s", c.layer, gone)
			}
		}
		arts := list(d, "build", "artifacts")
		if len(arts) != 1 {
			t.Fatalf("%s: artifacts %v", c.layer, arts)
		}
		a := arts[0].(map[string]any)
		if a["image"] != c.image || a["context"] != filepath.Join(src, c.ctx) || a["docker"] == nil {
			t.Errorf("%s: artifact %v, want %s from %s", c.layer, a, c.image, filepath.Join(src, c.ctx))
		}
		build := d["build"].(map[string]any)
		if tp, _ := build["tagPolicy"].(map[string]any); tp["inputDigest"] == nil || len(tp) != 1 {
			t.Errorf("%s: tagPolicy %v, want inputDigest", c.layer, build["tagPolicy"])
		}
		if l, _ := build["local"].(map[string]any); l["push"] != true || l["useBuildkit"] != true {
			t.Errorf("%s: local %v", c.layer, l)
		}
		helm := d["deploy"].(map[string]any)["helm"].(map[string]any)
		if helm["hooks"] != nil {
			t.Errorf("%s: hooks %v", c.layer, helm["hooks"])
		}
		rels := list(d, "deploy", "helm", "releases")
		if len(rels) != 1 {
			t.Fatalf("%s: releases %v", c.layer, rels)
		}
		r := rels[0].(map[string]any)
		chart, _ := r["chartPath"].(string)
		if r["name"] != c.release || r["setValueTemplates"] == nil || !filepath.IsAbs(chart) {
			t.Errorf("%s: release %v", c.layer, r)
		}
		paths := []string{chart}
		for _, v := range r["valuesFiles"].([]any) {
			paths = append(paths, v.(string))
		}
		for _, p := range paths {
			if _, err := os.Stat(p); err != nil || !filepath.IsAbs(p) {
				t.Errorf("%s: path %s: %v", c.layer, p, err)
			}
		}
		pf := list(d, "portForward")
		if len(pf) != 1 {
			t.Fatalf("%s: portForward %v", c.layer, pf)
		}
		if p := pf[0].(map[string]any); p["resourceName"] != c.release || p["namespace"] != c.ns || p["resourceType"] != "service" || p["address"] != "127.0.0.1" {
			t.Errorf("%s: portForward %v", c.layer, p)
		}
	}
	// A release whose image is not built here (envoy-proxy) is deployed
	// from its chart alone: no build section.
	ss, _ = e.FindServices("envoy-proxy")
	b, images, err = e.watchConfig(ss, nil)
	if err != nil || len(images) != 0 {
		t.Fatalf("envoy-proxy: %v, %v", images, err)
	}
	if d := watchDocs(t, b)[0]; d["build"] != nil || len(list(d, "deploy", "helm", "releases")) != 1 || d["portForward"] != nil {
		t.Errorf("envoy-proxy's config:\n%s", b)
	}
}

// watch on kind marks the watched layers stale before skaffold dev
// starts, runs it with cleanup off, BuildKit on and the cluster's
// registry, prints each port-forward once, and on Ctrl-C returns without
// error; the next dev redeploys those layers and only them.
func TestWatchOnKindRunsSkaffoldDevAndKeepsTheRecordHonest(t *testing.T) {
	out := quiet(t)
	w := newWorld(t)
	if _, err := w.deployAll(t); err != nil {
		t.Fatal(err)
	}
	e := w.run(t, "watch", "alt-backend")
	ss, err := e.FindServices("alt-backend")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var gotArgs, gotEnv []string
	var staleAtStart string
	e.devRun = func(ctx context.Context, r *run.Runner, args []string) error {
		gotArgs, gotEnv = args, r.Env
		staleAtStart = w.records["alt-core-services"].Stale
		pf := "Port forwarding service/alt-backend in namespace alt-apps, remote port 9000 -> http://127.0.0.1:41001\n"
		r.Stdout.Write([]byte("Generating tags...\n - kaikei/alt-backend -> kaikei/alt-backend:3b1f\n" + pf))
		r.Stdout.Write([]byte("Watching for chan"))
		r.Stdout.Write([]byte("ges...\n"))
		r.Stderr.Write([]byte(pf + "Watching for changes...\n"))
		cancel() // Ctrl-C
		<-ctx.Done()
		return ctx.Err()
	}
	if err := e.devLoop(ctx, ss, nil, "localhost:5014", []string{"DOCKER_CONFIG=/tools/docker-config"}); err != nil {
		t.Fatalf("Ctrl-C: %v", err)
	}
	if !strings.HasPrefix(staleAtStart, "watch rebuilt and redeployed alt-backend") {
		t.Errorf("the record was not marked before skaffold dev started: %q", staleAtStart)
	}
	for _, want := range []string{"dev", "-f", filepath.Join(e.Repo, WatchFile), "--default-repo", "localhost:5014", "--cleanup=false", "--port-forward=user", "--trigger=polling"} {
		if !slices.Contains(gotArgs, want) {
			t.Errorf("skaffold %v lacks %s", gotArgs, want)
		}
	}
	for _, want := range []string{"DOCKER_BUILDKIT=1", "DOCKER_CONFIG=/tools/docker-config"} {
		if !slices.Contains(gotEnv, want) {
			t.Errorf("skaffold's environment lacks %s", want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(e.Repo, WatchFile)); err != nil || !bytes.Contains(b, []byte("kaikei/alt-backend")) {
		t.Errorf("watch config: %v\n%s", err, b)
	}
	s := out.String()
	if n := strings.Count(s, "Port forwarding service/alt-backend"); n != 1 {
		t.Errorf("the port-forward was printed %d times:\n%s", n, s)
	}
	if n := strings.Count(s, "watching alt-backend (alt-core-services)"); n != 1 {
		t.Errorf("the ready line was printed %d times:\n%s", n, s)
	}
	if !strings.Contains(s, "The next `mage dev` redeploys alt-core-services") {
		t.Errorf("Ctrl-C does not say what the next dev does:\n%s", s)
	}
	// The next dev: 04 is redeployed for watch's sake, the rest is not.
	e2, err := w.deployAll(t)
	if err != nil {
		t.Fatal(err)
	}
	for l, a := range actions(e2) {
		want := Unchanged
		if l == "alt-core-services" {
			want = Deployed
		}
		if a != want {
			t.Errorf("after watch: %s %s, want %s", l, a, want)
		}
	}
	if d := e2.results["alt-core-services"].Detail; !strings.HasPrefix(d, "stale: watch rebuilt and redeployed alt-backend") {
		t.Errorf("the reason: %q", d)
	}
	if st := w.records["alt-core-services"].Stale; st != "" {
		t.Errorf("the redeploy kept the mark: %q", st)
	}
}

// skaffold dev failing on its own (not Ctrl-C) is an error that says the
// next dev redeploys the layer.
func TestWatchOnKindFailsWhenSkaffoldDevFails(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	if _, err := w.deployAll(t); err != nil {
		t.Fatal(err)
	}
	e := w.run(t, "watch", "alt-backend")
	ss, _ := e.FindServices("alt-backend")
	e.devRun = func(context.Context, *run.Runner, []string) error { return errors.New("exit status 1") }
	err := e.devLoop(t.Context(), ss, nil, "localhost:5014", nil)
	if err == nil || !strings.Contains(err.Error(), "exit status 1") || !strings.Contains(err.Error(), "next `mage dev` redeploys alt-core-services") {
		t.Errorf("err = %v", err)
	}
}

// A layer never deployed has no record to mark: nothing is made up.
func TestMarkStaleLeavesAbsentRecordsAbsent(t *testing.T) {
	quiet(t)
	w := newWorld(t)
	e := w.run(t, "watch", "alt-backend")
	ss, _ := e.FindServices("alt-backend")
	if err := e.markStale(t.Context(), []string{"alt-core-services"}, ss); err != nil {
		t.Fatal(err)
	}
	if len(w.records) != 0 {
		t.Errorf("records %v", w.records)
	}
}

func TestWatchOutputWritesWholeLinesOnce(t *testing.T) {
	var b bytes.Buffer
	ready := 0
	o := &watchOutput{w: &b, ready: func() { ready++ }}
	for _, chunk := range []string{"a\nPort forwarding x -> http://127.0.0.1:1\nWatch", "ing for changes...\n",
		"Port forwarding x -> http://127.0.0.1:1\n", "Port forwarding x -> http://127.0.0.1:2\nWatching for changes...\nlast"} {
		o.Write([]byte(chunk))
	}
	o.Flush()
	want := "a\nPort forwarding x -> http://127.0.0.1:1\nWatching for changes...\nPort forwarding x -> http://127.0.0.1:2\nWatching for changes...\nlast\n"
	if b.String() != want || ready != 1 {
		t.Errorf("wrote %q (ready %d times)", b.String(), ready)
	}
}

// Skaffold itself reads the watch config: `skaffold render` of it renders
// alt-backend's release alone, with the image it was given.
func TestSkaffoldRendersTheWatchConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs skaffold render; skipped with -short")
	}
	cfg, err := config.FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	tc := &tools.Cache{Dir: cfg.ToolsDir, Runner: &run.Runner{}}
	for _, name := range []string{"skaffold", "helm"} {
		if tl, _ := tools.Lookup(name); !tc.Installed(tl) {
			t.Skipf("%s %s is not in the tools cache %s (go run mage.go tools:install)", name, tl.Version, tc.Dir)
		}
	}
	quiet(t)
	e := newWorld(t).run(t, "watch", "alt-backend")
	ss, _ := e.FindServices("alt-backend")
	b, _, err := e.watchConfig(ss, []portForward{{Release: "alt-backend", Namespace: "alt-apps", Service: "alt-backend", Port: 9000, Local: 41001}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file, artifacts := filepath.Join(dir, "watch.yaml"), filepath.Join(dir, "artifacts.json")
	os.WriteFile(file, b, 0o644)
	os.WriteFile(artifacts, []byte(`{"builds":[{"imageName":"kaikei/alt-backend","tag":"localhost:5014/kaikei_alt-backend:watchtest"}]}`), 0o644)
	r := &run.Runner{Env: tc.Env(os.DevNull), Dir: dir}
	out, err := r.Output(t.Context(), "skaffold", "render", "--offline", "-f", file, "--build-artifacts", artifacts, "--digest-source=tag")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "image: localhost:5014/kaikei_alt-backend:watchtest") || !strings.Contains(out, "name: alt-backend") {
		t.Errorf("alt-backend is not rendered with its image:\n%s", out)
	}
	for _, other := range []string{"sidecar-proxy", "envoy-proxy"} {
		if strings.Contains(out, "name: "+other) {
			t.Errorf("%s is rendered too", other)
		}
	}
}
