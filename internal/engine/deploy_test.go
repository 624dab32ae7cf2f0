package engine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/sim"
	"github.com/alt-platform/orchestration/internal/tools"
)

// These tests run the real Mage targets (compiled once) in a copy of this
// repository against a fresh sim cluster and assert on what the API server
// holds.

var (
	mageOnce sync.Once
	mageBin  string
	mageErr  error
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "mage.go")); err == nil {
			return d
		}
	}
	t.Fatal("no repository root above " + dir)
	return ""
}

// mage compiles the Mage targets of this repository into one binary.
func mage(t *testing.T) string {
	t.Helper()
	mageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "alt-mage-")
		if err != nil {
			mageErr = err
			return
		}
		mageBin = filepath.Join(dir, "mage-targets")
		cmd := exec.Command("go", "run", "mage.go", "-compile", mageBin)
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			mageErr = &run.Error{Cmd: run.Cmd{Name: "go", Args: cmd.Args[1:]}, Err: err, Output: string(out)}
		}
	})
	if mageErr != nil {
		t.Fatal(mageErr)
	}
	return mageBin
}

// platform is a copy of the repository's platform files with its own sim
// cluster.
type platform struct {
	t    *testing.T
	dir  string
	kube string
	env  []string
	tc   *tools.Cache
}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	if testing.Short() {
		t.Skip("deploys the platform to a sim cluster")
	}
	root := repoRoot(t)
	dir := t.TempDir()
	if err := engine.CopyPlatform(root, dir); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(func(k string) (string, bool) { return os.LookupEnv(k) }, func() bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t, dir: dir, kube: filepath.Join(dir, ".cache", "sim", "kubeconfig"),
		tc: &tools.Cache{Dir: cfg.ToolsDir, Runner: &run.Runner{}}}
	p.env = append(os.Environ(), "ALT_CLUSTER=sim", "ALT_PROFILE=dev", "NO_COLOR=1")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := sim.New(dir, p.tc, &run.Runner{}).Down(ctx, true); err != nil {
			t.Errorf("sim down: %v", err)
		}
	})
	return p
}

// mage runs targets in the copy and returns the combined output.
func (p *platform) mage(env []string, targets ...string) (string, error) {
	cmd := exec.Command(mage(p.t), targets...)
	cmd.Dir = p.dir
	cmd.Env = append(append([]string{}, p.env...), env...)
	out, err := cmd.CombinedOutput()
	p.t.Logf("mage %s:\n%s", strings.Join(targets, " "), out)
	return string(out), err
}

// kubectl runs the pinned kubectl against the copy's cluster.
func (p *platform) kubectl(args ...string) string {
	p.t.Helper()
	paths, err := p.tc.Ensure(context.Background(), "kubectl")
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := (&run.Runner{Env: p.tc.Env(p.kube)}).Output(context.Background(), paths["kubectl"], args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// checkSecretScript runs scripts/check-secret, as the hooks do, against a
// Secret with one key holding a value and one empty: an empty key passes
// only when written KEY?, a missing key never.
func (p *platform) checkSecretScript() {
	p.t.Helper()
	p.kubectl("create", "secret", "generic", "check-secret-test", "-n", "alt-apps", "--from-literal=full=x", "--from-literal=empty=")
	defer p.kubectl("delete", "secret", "check-secret-test", "-n", "alt-apps")
	for _, c := range []struct {
		keys []string
		fail string
	}{
		{keys: []string{"full", "empty?"}},
		{keys: []string{"full", "empty"}, fail: "has key 'empty' but no value in it"},
		{keys: []string{"full", "other?"}, fail: "has no key 'other'"},
	} {
		args := append([]string{"alt-apps", "check-secret-test"}, c.keys...)
		cmd := exec.Command(filepath.Join(p.dir, "scripts", "check-secret"), args...)
		cmd.Env = p.tc.Env(p.kube)
		out, err := cmd.CombinedOutput()
		switch {
		case c.fail == "" && err != nil:
			p.t.Errorf("check-secret %s: %v\n%s", strings.Join(args, " "), err, out)
		case c.fail != "" && (err == nil || !strings.Contains(string(out), c.fail)):
			p.t.Errorf("check-secret %s: want a failure saying %q, got %v\n%s", strings.Join(args, " "), c.fail, err, out)
		}
	}
}

// revisions maps every Helm release to its latest revision, read from the
// release records Helm keeps in the API server.
func (p *platform) revisions() map[string]string {
	out := p.kubectl("get", "secrets", "-A", "-l", "owner=helm",
		"-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.labels.name} {.metadata.labels.version} {.metadata.labels.status}{"\n"}{end}`)
	revs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		if cur, ok := revs[f[0]]; !ok || atoi(f[1]) > atoi(strings.Fields(cur)[0]) {
			revs[f[0]] = f[1] + " " + f[2]
		}
	}
	return revs
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// actions reads the summary table: layer → action.
func actions(out string) map[string]string {
	re := regexp.MustCompile(`(?m)^\s+(alt-[a-z-]+)\s+(deployed|unchanged|failed|not started)\s`)
	got := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2]
	}
	return got
}

var layers = []string{"alt-foundation", "alt-infrastructure", "alt-core-services", "alt-auth-platform", "alt-application", "alt-processing", "alt-operations"}

func expect(t *testing.T, out string, want map[string]string) {
	t.Helper()
	got := actions(out)
	for _, l := range layers {
		if got[l] != want[l] {
			t.Errorf("%s: action %q, want %q", l, got[l], want[l])
		}
	}
}

func all(action string) map[string]string {
	m := map[string]string{}
	for _, l := range layers {
		m[l] = action
	}
	return m
}

func TestAllDeploysSkipsAndRedeploysWhatChanged(t *testing.T) {
	p := newPlatform(t)

	out, err := p.mage(nil, "all")
	if err != nil {
		t.Fatalf("cold all failed: %v", err)
	}
	expect(t, out, all("deployed"))
	revs := p.revisions()
	if len(revs) < 18 {
		t.Fatalf("only %d Helm releases in the cluster: %v", len(revs), revs)
	}
	for rel, rev := range revs {
		if !strings.HasSuffix(rev, "deployed") {
			t.Errorf("release %s: %s", rel, rev)
		}
	}
	if !strings.Contains(out, `placeholder tag "sim"`) || !strings.Contains(out, "ALT_CERT_MANAGER=off") {
		t.Error("the run does not say that sim builds nothing and cert-manager is off")
	}
	p.checkSecretScript()

	out, err = p.mage(nil, "all")
	if err != nil {
		t.Fatalf("second all failed: %v", err)
	}
	expect(t, out, all("unchanged"))
	if again := p.revisions(); !equal(revs, again) {
		t.Errorf("a no-op run made new Helm revisions:\nbefore %v\nafter  %v", revs, again)
	}

	// One value of one layer's chart: only that layer is deployed.
	values := filepath.Join(p.dir, "charts", "monitoring", "values.yaml")
	b, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	changed := regexp.MustCompile(`(?m)^(\s*retention:\s*).*$`).ReplaceAllString(string(b), "${1}9d")
	if changed == string(b) {
		t.Fatal("charts/monitoring/values.yaml has no retention: value to change")
	}
	os.WriteFile(values, []byte(changed), 0o644)
	out, err = p.mage(nil, "all")
	if err != nil {
		t.Fatalf("all after a change failed: %v", err)
	}
	want := all("unchanged")
	want["alt-operations"] = "deployed"
	expect(t, out, want)
	if !strings.Contains(out, "charts/monitoring/values.yaml") {
		t.Error("the run does not name the changed input")
	}

	// A deleted Deployment: its layer is deployed again, and only it.
	p.kubectl("delete", "deployment", "alt-backend", "-n", "alt-apps", "--wait=true")
	out, err = p.mage(nil, "all")
	if err != nil {
		t.Fatalf("all after a deletion failed: %v", err)
	}
	want = all("unchanged")
	want["alt-core-services"] = "deployed"
	expect(t, out, want)
	p.kubectl("get", "deployment", "alt-backend", "-n", "alt-apps")
}

func TestFailingLayerStopsDependantsOnly(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.mage(nil, "infrastructure"); err != nil {
		t.Fatalf("infrastructure: %v", err)
	}
	// alt-backend asks for more CPU than any simulated node has: its pod is
	// never scheduled.
	values := filepath.Join(p.dir, "skaffold", "04-core-services", "values", "alt-backend.yaml")
	b, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	huge := regexp.MustCompile(`(?m)^(\s+cpu:\s*).*$`).ReplaceAllString(string(b), `${1}"500"`)
	if huge == string(b) {
		t.Fatal("alt-backend.yaml has no cpu: value to change")
	}
	os.WriteFile(values, []byte(huge), 0o644)

	start := time.Now()
	out, err := p.mage([]string{"ALT_LAYER_TIMEOUT=40s"}, "all")
	if err == nil {
		t.Fatal("all succeeded with an unschedulable alt-backend")
	}
	if d := time.Since(start); d > 3*time.Minute {
		t.Errorf("the failing run took %s", d)
	}
	expect(t, out, map[string]string{
		"alt-foundation": "unchanged", "alt-infrastructure": "unchanged",
		"alt-core-services": "failed", "alt-auth-platform": "deployed", "alt-operations": "deployed",
		"alt-application": "not started", "alt-processing": "not started",
	})
	for _, want := range []string{"Deployment alt-apps/alt-backend", "ALT_LAYER_TIMEOUT"} {
		if !strings.Contains(out, want) {
			t.Errorf("the diagnosis does not mention %q", want)
		}
	}
	// The reason: the scheduler finds no node, or the namespace quota refuses the pod.
	if !strings.Contains(out, "Insufficient cpu") && !strings.Contains(out, "exceeded quota") {
		t.Error("the diagnosis does not say why alt-backend is not ready")
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
