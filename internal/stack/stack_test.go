package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A small good repository: two layers, the second needs the first and
// builds one image.
var goodRepo = map[string]string{
	"skaffold/skaffold.yaml": `apiVersion: skaffold/v4beta13
kind: Config
requires:
  - path: 01-base
  - path: 02-app
`,
	"skaffold/01-base/skaffold.yaml": `apiVersion: skaffold/v4beta13
kind: Config
metadata: {name: alt-base}
deploy:
  helm:
    releases:
      - name: base
        chartPath: ../../charts/base
        skipBuildDependencies: true
        namespace: alt-base
        valuesFiles: [values/base.yaml]
profiles:
  - name: dev
  - name: staging
  - name: prod
`,
	"skaffold/01-base/values/base.yaml": "{}\n",
	"skaffold/02-app/skaffold.yaml": `apiVersion: skaffold/v4beta13
kind: Config
metadata: {name: alt-app}
build:
  tagPolicy: {gitCommit: {}}
  local: {push: false, useBuildkit: true}
  artifacts:
    - image: app-server
      context: ../../.alt-src/app-server
deploy:
  helm:
    releases: &releases
      - &app
        name: app
        chartPath: ../../charts/base
        skipBuildDependencies: true
        namespace: alt-app
        setValueTemplates:
          image.repository: "{{.IMAGE_REPO_app_server}}"
          image.tag: "{{.IMAGE_TAG_app_server}}"
    hooks:
      after:
        - host: {command: ["kubectl", "rollout", "status", "deployment/app", "-n", "alt-app"]}
profiles:
  - name: dev
  - name: staging
    build:
      local: {push: true, useBuildkit: true}
  - name: prod
    build:
      local: {push: true, useBuildkit: true}
    deploy:
      helm:
        releases:
          - <<: *app
            valuesFiles: [values/app-prod.yaml]
`,
	"skaffold/02-app/values/app-prod.yaml": "replicas: 2\n",
	"charts/base/Chart.yaml":               "apiVersion: v2\nname: base\nversion: 0.1.0\n",
	"magefiles/layers.go": `//go:build mage

package main

func Base(ctx context.Context) error {
	return deployLayer(ctx, "alt-base")
}

func App(ctx context.Context) error {
	mg.CtxDeps(ctx, Base)
	return deployLayer(ctx, "alt-app")
}

func All(ctx context.Context) { mg.CtxDeps(ctx, App) }

func Dev(ctx context.Context) error { fmt.Println("dev"); return All(ctx) }

func Plan(ctx context.Context) error { return plan(ctx) }
`,
}

func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// check loads and validates a repository; it returns the error text.
func check(t *testing.T, dir string) string {
	t.Helper()
	s, err := Load(dir)
	if err != nil {
		return err.Error()
	}
	g, err := MageGraph(filepath.Join(dir, "magefiles"))
	if err != nil {
		return err.Error()
	}
	if err := Validate(s, g); err != nil {
		return err.Error()
	}
	return ""
}

func TestGoodRepo(t *testing.T) {
	dir := writeRepo(t, goodRepo)
	if msg := check(t, dir); msg != "" {
		t.Fatalf("good repo has problems:\n%s", msg)
	}
	s, _ := Load(dir)
	if got := strings.Join(s.Names(), ","); got != "alt-base,alt-app" {
		t.Errorf("layers = %s", got)
	}
	prod, err := s.Layer("alt-app").View("prod", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := prod.Releases[0]
	if r.Chart != "charts/base" || len(r.ValuesFiles) != 1 || r.ValuesFiles[0] != "skaffold/02-app/values/app-prod.yaml" {
		t.Errorf("prod release = %+v", r)
	}
	if len(prod.After) != 0 || !prod.Push {
		t.Errorf("prod replaces deploy.helm whole (hooks gone) and pushes: after=%v push=%v", prod.After, prod.Push)
	}
	dev, _ := s.Layer("02-app").View("dev", nil)
	if len(dev.After) != 1 || dev.Push || dev.Artifacts[0].Dockerfile != "Dockerfile" {
		t.Errorf("dev view = %+v", dev)
	}
	g, _ := MageGraph(filepath.Join(dir, "magefiles"))
	if !g.DependsOn("alt-app", "alt-base") || g.Target["alt-app"] != "App" {
		t.Errorf("graph = %+v", g)
	}
	// What a command line deploys: through mg.Deps and direct calls (Dev
	// calls All), any case; a target that deploys nothing reaches nothing.
	for targets, want := range map[string]string{"base": "alt-base", "App": "alt-app,alt-base",
		"all": "alt-app,alt-base", "dev": "alt-app,alt-base", "plan": "", "base plan": "alt-base"} {
		if got := strings.Join(g.RunLayers(strings.Fields(targets)), ","); got != want {
			t.Errorf("RunLayers(%s) = %q, want %q", targets, got, want)
		}
	}
}

func TestBrokenRepos(t *testing.T) {
	tests := []struct {
		name   string
		change map[string]string // file → new body ("" deletes)
		want   []string          // every one must appear in the message
	}{
		{name: "missing requires path",
			change: map[string]string{"skaffold/skaffold.yaml": strings.Replace(goodRepo["skaffold/skaffold.yaml"], "02-app", "03-nowhere", 1)},
			want:   []string{"skaffold/skaffold.yaml: requires[1].path", "skaffold/03-nowhere/skaffold.yaml: file does not exist"}},
		{name: "malformed yaml",
			change: map[string]string{"skaffold/01-base/skaffold.yaml": "metadata: {name: [oops\n"},
			want:   []string{"skaffold/01-base/skaffold.yaml: not valid YAML"}},
		{name: "duplicate metadata.name",
			change: map[string]string{"skaffold/02-app/skaffold.yaml": strings.Replace(goodRepo["skaffold/02-app/skaffold.yaml"], "name: alt-app}", "name: alt-base}", 1)},
			want:   []string{"skaffold/02-app/skaffold.yaml: metadata.name: \"alt-base\" is also the name of skaffold/01-base/skaffold.yaml"}},
		{name: "missing profile",
			change: map[string]string{"skaffold/01-base/skaffold.yaml": strings.Replace(goodRepo["skaffold/01-base/skaffold.yaml"], "  - name: staging\n", "", 1)},
			want:   []string{"skaffold/01-base/skaffold.yaml: profiles: no profile \"staging\""}},
		{name: "missing chart",
			change: map[string]string{"charts/base/Chart.yaml": ""},
			want:   []string{"skaffold/01-base/skaffold.yaml: profiles[dev].deploy.helm.releases[base].chartPath: charts/base has no Chart.yaml"}},
		{name: "Skaffold builds a chart's dependencies",
			change: map[string]string{"skaffold/01-base/skaffold.yaml": strings.Replace(goodRepo["skaffold/01-base/skaffold.yaml"], "        skipBuildDependencies: true\n", "", 1)},
			want:   []string{"skaffold/01-base/skaffold.yaml: profiles[dev].deploy.helm.releases[base].skipBuildDependencies: not true; Skaffold would run `helm dependency build` in charts/base at every deploy"}},
		{name: "chart dependency from a chart repository",
			change: map[string]string{"charts/base/Chart.yaml": "apiVersion: v2\nname: base\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 2.x\n    repository: https://charts.bitnami.com/bitnami\n"},
			want:   []string{`skaffold/01-base/skaffold.yaml: profiles[dev].deploy.helm.releases[base].chartPath: charts/base/Chart.yaml: dependencies[0] (common): repository "https://charts.bitnami.com/bitnami": only a local chart (file://../<chart>) can be used offline`}},
		{name: "local chart dependency that does not exist",
			change: map[string]string{"charts/base/Chart.yaml": "apiVersion: v2\nname: base\nversion: 0.1.0\ndependencies:\n  - name: common\n    version: 0.1.0\n    repository: file://../common\n"},
			want:   []string{"skaffold/01-base/skaffold.yaml: profiles[dev].deploy.helm.releases[base].chartPath: charts/base/Chart.yaml: dependencies[0] (common): repository file://../common: open"}},
		{name: "missing values file",
			change: map[string]string{"skaffold/02-app/values/app-prod.yaml": ""},
			want:   []string{"skaffold/02-app/skaffold.yaml: profiles[prod].deploy.helm.releases[app].valuesFiles[0]: skaffold/02-app/values/app-prod.yaml does not exist"}},
		{name: "unknown image variable",
			change: map[string]string{"skaffold/02-app/skaffold.yaml": strings.Replace(goodRepo["skaffold/02-app/skaffold.yaml"], "IMAGE_TAG_app_server", "IMAGE_TAG_app_srv", 1)},
			want:   []string{"skaffold/02-app/skaffold.yaml: profiles[dev].deploy.helm.releases[app].setValueTemplates[image.tag]: {{.IMAGE_TAG_app_srv}} names no artifact of this layer (artifacts: app_server)"}},
		{name: "unused artifact",
			change: map[string]string{"skaffold/02-app/skaffold.yaml": strings.Replace(goodRepo["skaffold/02-app/skaffold.yaml"], "      context: ../../.alt-src/app-server\n", "      context: ../../.alt-src/app-server\n    - image: worker\n      context: ../../.alt-src/worker\n", 1)},
			want:   []string{"skaffold/02-app/skaffold.yaml: profiles[dev].build.artifacts[worker]: not used"}},
		{name: "artifact without context",
			change: map[string]string{"skaffold/02-app/skaffold.yaml": strings.Replace(goodRepo["skaffold/02-app/skaffold.yaml"], "      context: ../../.alt-src/app-server\n", "", 1)},
			want:   []string{"skaffold/02-app/skaffold.yaml: profiles[dev].build.artifacts[app-server].context: empty"}},
		{name: "requires order against the graph",
			change: map[string]string{"skaffold/skaffold.yaml": "apiVersion: skaffold/v4beta13\nkind: Config\nrequires:\n  - path: 02-app\n  - path: 01-base\n"},
			want:   []string{"skaffold/skaffold.yaml: requires[0]: alt-app needs alt-base (Mage target App), which is required later at requires[1]"}},
		{name: "cycle",
			change: map[string]string{"magefiles/layers.go": strings.Replace(goodRepo["magefiles/layers.go"], "func Base(ctx context.Context) error {\n", "func Base(ctx context.Context) error {\n\tmg.CtxDeps(ctx, App)\n", 1)},
			want:   []string{"magefiles/layers.go: App mg.Deps: the layer graph has a cycle: alt-app -> alt-base -> alt-app (the mg.Deps of targets App, Base)"}},
		{name: "layer without target",
			change: map[string]string{"magefiles/layers.go": strings.Replace(goodRepo["magefiles/layers.go"], `deployLayer(ctx, "alt-base")`, `nil`, 1)},
			want:   []string{"magefiles: targets: no Mage target deploys layer alt-base"}},
		{name: "target for unknown layer",
			change: map[string]string{"magefiles/layers.go": goodRepo["magefiles/layers.go"] + "\nfunc Extra(ctx context.Context) error { return deployLayer(ctx, \"alt-extra\") }\n"},
			want:   []string{"magefiles/layers.go: Extra: deploys layer \"alt-extra\", which skaffold/skaffold.yaml does not require"}},
		{name: "unknown field behind a merge key",
			change: map[string]string{"skaffold/02-app/skaffold.yaml": strings.Replace(goodRepo["skaffold/02-app/skaffold.yaml"], "            valuesFiles: [values/app-prod.yaml]", "            valueFiles: [values/app-prod.yaml]", 1)},
			want:   []string{"skaffold/02-app/skaffold.yaml: profiles[prod].deploy.helm.releases[app].valueFiles: unknown field; Skaffold (schema skaffold/v4beta13) rejects it; did you mean valuesFiles?"}},
		{name: "unknown field in a hook",
			change: map[string]string{"skaffold/02-app/skaffold.yaml": strings.Replace(goodRepo["skaffold/02-app/skaffold.yaml"], "- host: {command:", "- host: {cmd:", 1)},
			want:   []string{"skaffold/02-app/skaffold.yaml: deploy.helm.hooks.after[0].host.cmd: unknown field"}},
		{name: "an older apiVersion",
			change: map[string]string{"skaffold/01-base/skaffold.yaml": strings.Replace(goodRepo["skaffold/01-base/skaffold.yaml"], "apiVersion: skaffold/v4beta13", "apiVersion: skaffold/v4beta11", 1)},
			want:   []string{`skaffold/01-base/skaffold.yaml: apiVersion/kind: expected apiVersion skaffold/v4beta13 (the schema its fields are checked against) and kind Config, got "skaffold/v4beta11"/"Config"`}},
		{name: "unknown field where the model reads nothing",
			change: map[string]string{"skaffold/02-app/skaffold.yaml": strings.Replace(goodRepo["skaffold/02-app/skaffold.yaml"], "kind: Config\n", "kind: Config\nportForward:\n  - resourceType: service\n    resourceName: app\n    prot: 8080\n", 1)},
			want:   []string{"skaffold/02-app/skaffold.yaml: portForward[0].prot: unknown field; Skaffold (schema skaffold/v4beta13) rejects it; did you mean port?"}},
		{name: "values file that is not YAML",
			change: map[string]string{"skaffold/01-base/values/base.yaml": "a: [1\n"},
			want:   []string{"skaffold/01-base/values/base.yaml: content: not valid YAML (release base reads it)"}},
		{name: "values file no profile reads",
			change: map[string]string{"skaffold/01-base/values/base-qa.yaml": "{}\n"},
			want:   []string{"skaffold/01-base/values/base-qa.yaml: valuesFiles: no release of skaffold/01-base/skaffold.yaml reads it"}},
		{name: "every problem at once",
			change: map[string]string{"charts/base/Chart.yaml": "", "skaffold/02-app/values/app-prod.yaml": ""},
			want:   []string{"chartPath: charts/base has no Chart.yaml", "valuesFiles[0]: skaffold/02-app/values/app-prod.yaml does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range goodRepo {
				files[k] = v
			}
			for k, v := range tt.change {
				if v == "" {
					delete(files, k)
				} else {
					files[k] = v
				}
			}
			msg := check(t, writeRepo(t, files))
			if msg == "" {
				t.Fatal("no problem reported")
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

// Fields Skaffold accepts but the stack model does not read pass.
func TestValidSkaffoldFieldsPass(t *testing.T) {
	files := map[string]string{}
	for k, v := range goodRepo {
		files[k] = v
	}
	files["skaffold/01-base/skaffold.yaml"] = strings.Replace(goodRepo["skaffold/01-base/skaffold.yaml"], "        valuesFiles: [values/base.yaml]\n",
		"        valuesFiles: [values/base.yaml]\n        skipBuildDependencies: true\n        wait: true\n        upgradeOnChange: true\n    flags: {upgrade: [--atomic]}\n  kubectl: {flags: {apply: [--server-side]}}\n  statusCheckDeadlineSeconds: 60\nportForward:\n  - {resourceType: service, resourceName: base, port: 80}\nmanifests:\n  rawYaml: [k8s/*.yaml]\n", 1)
	if files["skaffold/01-base/skaffold.yaml"] == goodRepo["skaffold/01-base/skaffold.yaml"] {
		t.Fatal("the test's change did not apply")
	}
	if msg := check(t, writeRepo(t, files)); msg != "" {
		t.Errorf("valid Skaffold fields were reported:\n%s", msg)
	}
}

func TestMermaid(t *testing.T) {
	g := &Graph{Needs: map[string][]string{"a-x": nil, "b": {"a-x"}}}
	got := g.Mermaid([]string{"a-x", "b"})
	want := "flowchart LR\n  a_x[a-x]\n  b[b]\n  a_x --> b\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// A conditional profile is applied before the profile named with -p, as
// Skaffold does: prod, which restates deploy.helm, wins over it wherever
// the two are written; dev, which restates nothing, gets it.
func TestConditionalProfileBeforeTheNamedOne(t *testing.T) {
	files := map[string]string{}
	for k, v := range goodRepo {
		files[k] = v
	}
	files["skaffold/02-app/skaffold.yaml"] += `  - name: quiet
    activation:
      - env: ALT_QUIET=on
    deploy:
      helm:
        releases:
          - <<: *app
            valuesFiles: [values/app-quiet.yaml]
`
	files["skaffold/02-app/values/app-quiet.yaml"] = "replicas: 0\n"
	dir := writeRepo(t, files)
	if msg := check(t, dir); msg != "" {
		t.Fatalf("repo has problems:\n%s", msg)
	}
	s, _ := Load(dir)
	quiet := func(k string) string {
		if k == "ALT_QUIET" {
			return "on"
		}
		return ""
	}
	for _, c := range []struct {
		profile string
		env     func(string) string
		want    string
	}{
		{"prod", quiet, "skaffold/02-app/values/app-prod.yaml"},
		{"dev", quiet, "skaffold/02-app/values/app-quiet.yaml"},
		{"dev", nil, ""},
	} {
		v, err := s.Layer("alt-app").View(c.profile, c.env)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(v.Releases[0].ValuesFiles, ","); got != c.want {
			t.Errorf("%s (conditional profile active: %v): values files %q, want %q", c.profile, c.env != nil, got, c.want)
		}
	}
}
