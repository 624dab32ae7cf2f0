package check

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/stack"
)

// platform copies the real repository's platform files (what a run
// deploys: engine.CopyPlatform) into a temporary folder and applies edits
// as fixture does.
func platform(t *testing.T, edits ...edit) string {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := engine.CopyPlatform(repo, dst); err != nil {
		t.Fatal(err)
	}
	applyEdits(t, dst, edits)
	return dst
}

// renderCache holds the rendered objects of the broken copies by what
// renders them (renderKey): a case that only breaks a hook reuses the
// render of the unbroken repository.
var renderCache sync.Map // key → []*Object

// renderKey digests what Render reads for a profile: every release (name,
// namespace, chart, value templates), its values files and its chart's
// files.
func renderKey(t *testing.T, s *stack.Stack, profile string) string {
	t.Helper()
	h := sha256.New()
	for _, l := range s.Layers {
		v, err := l.View(profile, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range v.Releases {
			var tmpl []string
			for k, val := range r.Templates {
				tmpl = append(tmpl, k+"="+val)
			}
			sort.Strings(tmpl)
			fmt.Fprintf(h, "%s|%s|%s|%s|%v\n", l.Name, r.Name, r.Namespace, r.Chart, tmpl)
			files := slices_(r.ValuesFiles)
			if !r.Remote {
				// The chart's files and its library's (charts/common).
				fs, err := charts.Files(s.Repo, r.Chart)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, fs...)
			}
			for _, f := range files {
				b, _ := os.ReadFile(filepath.Join(s.Repo, f))
				fmt.Fprintf(h, "%s %x\n", f, sha256.Sum256(b))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func slices_(s []string) []string { return append([]string(nil), s...) }

// objectChecks runs every check of All that works on rendered objects
// (Strict, Policy, Secrets, References, Hooks, Owners, Flows) and Deployed
// on a copy of the platform, for one profile, and joins their problems.
func objectChecks(t *testing.T, repo, profile string) error {
	t.Helper()
	helm, r := tool(t, "helm")
	s := loadStack(t, repo)
	g, err := stack.MageGraph(filepath.Join(repo, "magefiles"))
	if err != nil {
		t.Fatal(err)
	}
	key := renderKey(t, s, profile)
	var objs []*Object
	if v, ok := renderCache.Load(key); ok {
		objs = v.([]*Object)
	} else {
		rs, err := Render(context.Background(), r, s, helm, profile)
		if err != nil {
			return err
		}
		objs = Objects(rs)
		renderCache.Store(key, objs)
	}
	var errs []error
	if _, err := Strict(objs); err != nil {
		errs = append(errs, fmt.Errorf("strict: %w", err))
	}
	if _, err := Policy(objs); err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	}
	if err := Secrets(repo, objs); err != nil {
		errs = append(errs, fmt.Errorf("secrets: %w", err))
	}
	if _, err := References(s, g, objs); err != nil {
		errs = append(errs, fmt.Errorf("references: %w", err))
	}
	if _, err := Hooks(s, g, objs); err != nil {
		errs = append(errs, fmt.Errorf("hooks: %w", err))
	}
	if err := errors.Join(Owners(objs), Deployed(s)); err != nil {
		errs = append(errs, fmt.Errorf("owners: %w", err))
	}
	table, err := FlowTable(repo, foundationValues(s, []string{profile})...)
	if err == nil {
		err = Flows(table, objs)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("flows: %w", err))
	}
	return errors.Join(errs...)
}

// TestBrokenPlatform breaks a copy of the real repository the way Alt's
// own setup broke (DESIGN.md, "Lessons from Alt's earlier setup"), one
// case per break, and runs the object checks of ci on it (dev profile):
// each case must fail naming the culprit (file, object, value). The first
// case, unbroken, must pass. Adding a case is adding a row.
func TestBrokenPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("renders the platform for each broken chart; skipped with -short")
	}
	const (
		flows = FlowFile
		l04   = "skaffold/04-core-services/skaffold.yaml"
		l05   = "skaffold/05-auth-platform/skaffold.yaml"
		l06   = "skaffold/06-application/skaffold.yaml"
		l07   = "skaffold/07-processing/skaffold.yaml"
		l08   = "skaffold/08-operations/skaffold.yaml"
	)
	cases := []struct {
		name   string
		lesson int // DESIGN.md's lesson the case breaks (README: "Lessons from Alt")
		edits  []edit
		want   []string
	}{
		{name: "unbroken"},

		// Lesson 9: the flow table covers what the workloads call, and only that.
		{name: "flow a service needs, missing from the table", lesson: 9,
			edits: []edit{{flows, "  - from: {namespace: alt-apps, app: alt-backend}\n    to: {namespace: alt-database, app: postgres, component: database}\n    ports: [5432]\n", ""}},
			want:  []string{"Deployment alt-apps/alt-backend (release alt-backend, layer alt-core-services)", "names Service alt-database/postgres", "has no such flow", "add flow alt-apps/alt-backend -> alt-database/postgres/database:5432", "[dev]"}},
		{name: "host in one variable, a wrong port in another", lesson: 9,
			edits: []edit{{"charts/backups/values.yaml", "    host: kratos-postgres\n    port: 5432\n", "    host: kratos-postgres\n    port: 5433\n"}},
			want:  []string{"CronJob alt-operations/backups-kratos-postgres", "env[PGHOST]", `"kratos-postgres.alt-auth.svc" port 5433: Service alt-auth/kratos-postgres has no such port (ports 5432)`}},
		{name: "flow nobody calls", lesson: 9,
			edits: []edit{{flows, "  # tag-generator -> postgres, envoy-proxy (its model download)\n", "  - from: {namespace: alt-processing, app: tag-generator}\n    to: {namespace: alt-search, app: meilisearch}\n    ports: [7700]\n  # tag-generator -> postgres, envoy-proxy (its model download)\n"}},
			want:  []string{flows, "flow alt-processing/tag-generator -> alt-search/meilisearch:7700", "port 7700: no workload of alt-processing/tag-generator names a Service of alt-search/meilisearch"}},

		// Lesson 7: hooks gate, on what the layer's dependencies deploy.
		{name: "hook that waits on a layer it does not need", lesson: 7,
			edits: []edit{{l05, "      before:\n        # kratos-postgres and auth-postgres (layer 02) are Ready.\n",
				"      before:\n        - host: {dir: ../.., command: [\"scripts/kube\", \"rollout\", \"status\", \"deployment/alt-backend\", \"-n\", \"alt-apps\", \"--timeout=120s\"]}\n        # kratos-postgres and auth-postgres (layer 02) are Ready.\n"}},
			want: []string{l05, "before-hook 0 of layer alt-auth-platform", "Deployment alt-apps/alt-backend is deployed by layer alt-core-services (release alt-backend), which layer alt-auth-platform does not depend on", "[dev]"}},
		{name: "hook that names the wrong namespace", lesson: 7,
			edits: []edit{{l06, `"deployment/auth-service", "-n", "alt-auth"`, `"deployment/auth-service", "-n", "alt-apps"`}},
			want:  []string{l06, "before-hook 1 of layer alt-application", "Deployment alt-apps/auth-service is deployed by no release", "it is deployed in namespace alt-auth (layer alt-auth-platform): the hook names the wrong namespace"}},
		{name: "before-hook that waits on its own layer", lesson: 7,
			edits: []edit{{l07, `"deployment/alt-backend", "-n", "alt-apps"`, `"deployment/pre-processor", "-n", "alt-processing"`}},
			want:  []string{l07, "before-hook 2 of layer alt-processing", "Deployment alt-processing/pre-processor is deployed by this layer (release pre-processor), after its before-hooks ran"}},
		{name: "hook that cannot fail: a trailing or-true", lesson: 7,
			edits: []edit{{"scripts/kube", `kube "$@"`, `kube "$@" || true`}},
			want:  []string{l06, "before-hook 0 of layer alt-application (scripts/kube rollout status deployment/alt-backend -n alt-apps --timeout=120s)", "the hook cannot fail: it exits 0 even when all 1 command(s) it runs fail"}},
		{name: "hook that cannot fail: exit 0", lesson: 7,
			edits: []edit{{"scripts/foundation-present", "||\n\t\tfail \"namespace $ns or its alt-shared-config is missing; deploy 01-foundation first\"",
				"|| {\n\t\techo \"namespace $ns or its alt-shared-config is missing\" >&2\n\t\texit 0\n\t}"}},
			want: []string{l08, "before-hook 0 of layer alt-operations (scripts/foundation-present alt-observability alt-operations)", "the hook cannot fail"}},
		{name: "hook that cannot fail: set +e and no check after", lesson: 7,
			edits: []edit{{"scripts/kube", "set -eu\n", "set +e\n"}, {"scripts/kube", `kube "$@"`, "kube \"$@\"\necho \"kube: $* done\""}},
			want:  []string{l08, "after-hook 0 of layer alt-operations (scripts/kube rollout status statefulset/monitoring-prometheus", "the hook cannot fail: it exits 0 even when all 1 command(s) it runs fail"}},
		{name: "hook that waits forever", lesson: 7,
			edits: []edit{{l07, `command: ["scripts/kube", "rollout", "status", "statefulset/news-creator", "-n", "alt-processing", "--timeout=300s"]`,
				`command: ["sh", "-c", "until scripts/kube rollout status statefulset/news-creator -n alt-processing; do sleep 5; done"]`}},
			want: []string{l07, "after-hook 0 of layer alt-processing", "the hook never ends"}},
		{name: "hook that runs a script that does not exist", lesson: 7,
			edits: []edit{{l06, `command: ["scripts/kube", "rollout", "status", "deployment/alt-backend"`, `command: ["scripts/kubectl", "rollout", "status", "deployment/alt-backend"`}},
			want:  []string{l06, "before-hook 0 of layer alt-application", "it runs scripts/kubectl, which does not exist"}},
		{name: "shell written in the Skaffold file", lesson: 7,
			edits: []edit{{l04, `command: ["scripts/check-secret", "alt-apps", "postgres-alt-db-user", "username", "password", "database"]`,
				`command: ["sh", "-c", "set -eu\nkubectl get secret postgres-alt-db-user -n alt-apps -o name", "check"]`}},
			want: []string{l04, "before-hook 1 of layer alt-core-services", "a shell script of 2 lines written in the Skaffold file: put it in scripts/"}},

		// Lesson 6: the Secret a service reads is the one a chart creates.
		{name: "Secret name drifted from its creator", lesson: 6,
			edits: []edit{{"charts/backups/values.yaml", "    secret: kratos-postgres-credentials\n", "    secret: kratos-postgres-creds\n"}},
			want:  []string{"CronJob alt-operations/backups-kratos-postgres", "Secret alt-operations/kratos-postgres-creds", "is not created in this profile and no hook of layer alt-operations"}},

		// Lesson 3: one tag policy; images are pulled (the chart's schema
		// refuses Never before Policy sees it; TestPolicy breaks Policy).
		{name: "pullPolicy Never in a chart default", lesson: 3,
			edits: []edit{{"charts/service/values.yaml", "  pullPolicy: IfNotPresent\n", "  pullPolicy: Never\n"}},
			want:  []string{"charts/service: release alt-backend (layer alt-core-services): helm template failed", "/image/pullPolicy': value must be one of 'IfNotPresent', 'Always'"}},

		// Lesson 5: one owner per object.
		{name: "object owned by two releases", lesson: 5,
			edits: []edit{{"charts/nginx/templates/shared-config.yaml", "", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: alt-shared-config\ndata:\n  EDGE: nginx\n"}},
			want:  []string{"ConfigMap alt-ingress/alt-shared-config (release foundation, layer alt-foundation)", "also rendered by release nginx-external of layer alt-application (charts/nginx/templates/shared-config.yaml)"}},

		// Lesson 10: what is in the repository is deployed.
		{name: "chart no release deploys", lesson: 10,
			edits: []edit{{"charts/old-frontend/Chart.yaml", "", "apiVersion: v2\nname: old-frontend\nversion: 0.1.0\n"}},
			want:  []string{"charts/old-frontend/Chart.yaml: no release of any layer deploys this chart"}},

		// Lesson 4: namespaces exist before anything is put in them.
		{name: "release into a namespace nobody creates", lesson: 4,
			edits: []edit{{"skaffold/02-infrastructure/skaffold.yaml", "        namespace: alt-search\n", "        namespace: alt-searchx\n"}},
			want:  []string{"StatefulSet alt-searchx/meilisearch", "namespace alt-searchx is created by no release (01-foundation creates every namespace)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name != "unbroken" && (c.lesson < 1 || c.lesson > 10 || len(c.edits) == 0 || len(c.want) == 0) {
				t.Fatal("a case names its lesson (1-10), its edits and what the failure must name")
			}
			wantErr(t, objectChecks(t, platform(t, c.edits...), "dev"), c.want...)
		})
	}
}

func TestOwners(t *testing.T) {
	other := in{layer: "alt-base", release: "base", chart: "charts/base", ns: "alt-app"}
	cases := []struct {
		name string
		objs func(t *testing.T) []*Object
		want []string
	}{
		{name: "one owner each", objs: func(t *testing.T) []*Object {
			// The same name as another kind, or in another namespace, is another object.
			return append(objects(t, app, goodDeployment+appSecretYAML), objects(t, in{layer: "alt-base", release: "base", chart: "charts/base", ns: "alt-other"}, strings.Replace(appSecretYAML, "app/templates", "base/templates", 1))...)
		}},
		{name: "a Secret owned by two releases", objs: func(t *testing.T) []*Object {
			return append(objects(t, app, goodDeployment+appSecretYAML), objects(t, other, strings.Replace(appSecretYAML, "app/templates", "base/templates", 1))...)
		}, want: []string{"charts/app/templates/secret.yaml", "Secret alt-app/app-credentials (release app, layer alt-app)", "also rendered by release base of layer alt-base (charts/base/templates/secret.yaml)", "one owner per object"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantErr(t, Owners(c.objs(t)), c.want...) })
	}
}

func TestDeployed(t *testing.T) {
	wantErr(t, Deployed(loadStack(t, fixture(t))))
	repo := fixture(t, edit{"charts/old-frontend/Chart.yaml", "", "apiVersion: v2\nname: old-frontend\nversion: 0.1.0\n"})
	wantErr(t, Deployed(loadStack(t, repo)), "charts/old-frontend/Chart.yaml: no release of any layer deploys this chart in any profile")
	// A library chart is deployed through the charts that depend on it.
	lib := edit{"charts/lib/Chart.yaml", "", "apiVersion: v2\nname: lib\ntype: library\nversion: 0.1.0\n"}
	wantErr(t, Deployed(loadStack(t, fixture(t, lib))), "charts/lib/Chart.yaml: no deployed chart depends on this library chart")
	wantErr(t, Deployed(loadStack(t, fixture(t, lib, edit{"charts/app/Chart.yaml", "", "dependencies:\n  - name: lib\n    version: 0.1.0\n    repository: file://../lib\n"}))))
}

func TestCommitted(t *testing.T) {
	ctx := context.Background()
	// Outside a git work tree: a note, nothing checked.
	note, err := Committed(ctx, nil, loadStack(t, fixture(t)))
	if err != nil || note == nil || !strings.Contains(note.String(), "not the top of a git work tree") {
		t.Fatalf("outside git: note %v, err %v", note, err)
	}
	gitRepo := func(t *testing.T, edits ...edit) *stack.Stack {
		repo := fixture(t, edits...)
		if out, err := exec.Command("git", "-C", repo, "init", "-q").CombinedOutput(); err != nil {
			t.Fatalf("git init: %v: %s", err, out)
		}
		return loadStack(t, repo)
	}
	_, err = Committed(ctx, nil, gitRepo(t, edit{".gitignore", "", "/.cache/\n"}))
	wantErr(t, err)
	// Alt's mistake: the values files of one profile are git-ignored.
	_, err = Committed(ctx, nil, gitRepo(t, edit{".gitignore", "", "/.cache/\n*-external.yaml\n"}))
	wantErr(t, err, "skaffold/02-app/values/app-external.yaml: git ignores it (.gitignore:2:*-external.yaml), so a fresh clone cannot render what reads it", "[staging, prod]")
	// A chart folder ignored as a whole.
	_, err = Committed(ctx, nil, gitRepo(t, edit{".gitignore", "", "charts/app/templates/\n"}))
	wantErr(t, err, "charts/app/templates/deployment.yaml: git ignores it (.gitignore:1:charts/app/templates/)", "[dev, staging, prod]")
	// The library a chart depends on is an input; its copy vendored into
	// the chart (git-ignored, written by every run) is not.
	lib := []edit{
		{"charts/common/Chart.yaml", "", "apiVersion: v2\nname: common\ntype: library\nversion: 0.1.0\n"},
		{"charts/common/templates/_names.tpl", "", "{{- define \"common.fullname\" -}}{{ .Release.Name }}{{- end }}\n"},
		{"charts/app/Chart.yaml", "", "dependencies:\n  - name: common\n    version: 0.1.0\n    repository: file://../common\n"},
		{"charts/app/charts/common-0.1.0.tgz", "", "vendored"},
	}
	_, err = Committed(ctx, nil, gitRepo(t, append(lib, edit{".gitignore", "", "/charts/*/charts/\n"})...))
	wantErr(t, err)
	_, err = Committed(ctx, nil, gitRepo(t, append(lib, edit{".gitignore", "", "/charts/*/charts/\n/charts/common/templates/\n"})...))
	wantErr(t, err, "charts/common/templates/_names.tpl: git ignores it (.gitignore:2:/charts/common/templates/)", "[dev, staging, prod]")
}

// TestLessonsTable keeps the README's table "Lessons from Alt, and the
// check that holds each" true: one row for each of DESIGN.md's ten
// lessons, each naming at least one test (`pkg.TestName` or
// `pkg.TestName/case`), and every test named exists in internal/<pkg>
// (the case as a string literal of its test files).
func TestLessonsTable(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Lessons from Alt, and the check that holds each\n")
	if !ok {
		t.Fatal(`README.md: no section "## Lessons from Alt, and the check that holds each"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	sources := map[string]string{} // package → its test files
	testSource := func(pkg string) string {
		if s, ok := sources[pkg]; ok {
			return s
		}
		files, _ := filepath.Glob(filepath.Join(root, "internal", pkg, "*_test.go"))
		var all strings.Builder
		for _, f := range files {
			b, _ := os.ReadFile(f)
			all.Write(b)
		}
		sources[pkg] = all.String()
		return sources[pkg]
	}
	ref := regexp.MustCompile("`([a-z]+)\\.(Test[A-Za-z0-9_]+)(/[^`]+)?`")
	var rows []int
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.ReplaceAll(line, `\|`, "\x00"), "|")
		if len(cells) != 6 || strings.Trim(cells[1], " -#") == "" {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(cells[1]), "%d", &n); err != nil {
			t.Errorf("README.md: lessons row %q: no lesson number", line)
			continue
		}
		rows = append(rows, n)
		tests := ref.FindAllStringSubmatch(strings.ReplaceAll(cells[4], "\x00", "|"), -1)
		if len(tests) == 0 {
			t.Errorf("README.md: lesson %d names no test (`pkg.TestName` or `pkg.TestName/case`)", n)
		}
		for _, m := range tests {
			pkg, fn, sub := m[1], m[2], strings.TrimPrefix(m[3], "/")
			src := testSource(pkg)
			if !strings.Contains(src, "func "+fn+"(t *testing.T)") {
				t.Errorf("README.md: lesson %d names %s.%s: no such test in internal/%s", n, pkg, fn, pkg)
			} else if sub != "" && !strings.Contains(src, fmt.Sprintf("%q", sub)) {
				t.Errorf("README.md: lesson %d names %s.%s/%s: no such case in internal/%s", n, pkg, fn, sub, pkg)
			}
		}
	}
	if fmt.Sprint(rows) != "[1 2 3 4 5 6 7 8 9 10]" {
		t.Errorf("README.md: the lessons table has rows %v, want one per lesson, 1 to 10", rows)
	}
}
