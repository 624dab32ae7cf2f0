package engine_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFaultsConverge breaks a deployed platform in the ways an operator
// meets (a second run while one holds the lock, a release left pending by
// an interrupted run, Ctrl-C in the middle of a layer, the API server
// killed in the middle of a layer, the deploy tools deleted from the cache,
// a Job that fails)
// and checks that each ends in a clear message and that the next run
// converges, with every claim and generated secret kept.
func TestFaultsConverge(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.mage(nil, "all"); err != nil {
		t.Fatalf("cold all: %v", err)
	}
	// What must survive every fault below: the claims (by UID, so a claim
	// deleted and made again counts as lost) and the generated secrets.
	kept := func() string {
		return p.kubectl("get", "pvc", "-A", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.metadata.uid}{"\n"}{end}`) +
			p.kubectl("get", "secret", "-A", "-l", "app.kubernetes.io/managed-by=Helm", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.data}{"\n"}{end}`)
	}
	before := kept()
	if !strings.Contains(before, "alt-database/data-postgres-0=") || !strings.Contains(before, "alt-database/postgres-credentials=") {
		t.Fatalf("no postgres claim or credentials to watch:\n%s", before)
	}
	defer func() {
		if after := kept(); after != before {
			t.Errorf("claims or generated secrets changed across the faults:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}()

	t.Run("a second run is refused while another holds the lock", func(t *testing.T) {
		lease := filepath.Join(t.TempDir(), "lease.yaml")
		now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
		os.WriteFile(lease, []byte(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: alt-platform-deploy, namespace: kube-system}
spec: {holderIdentity: "ops@laptop pid 4242 running \"all\"", leaseDurationSeconds: 60, renewTime: "`+now+`", acquireTime: "`+now+`"}
`), 0o644)
		p.kubectl("apply", "-f", lease)
		before := p.revisions()
		out, err := p.mage(nil, "all")
		if err == nil {
			t.Fatal("all ran while another run held the lock")
		}
		if !strings.Contains(out, `another run is deploying to this cluster: ops@laptop pid 4242 running "all"`) {
			t.Error("the refusal does not name the other run")
		}
		if after := p.revisions(); !equal(before, after) {
			t.Errorf("a refused run changed releases: %v -> %v", before, after)
		}
		p.kubectl("delete", "lease", "alt-platform-deploy", "-n", "kube-system")
	})

	t.Run("a release left pending is recovered", func(t *testing.T) {
		// Forge what a run killed in the middle of `helm upgrade` leaves: a
		// newer revision record in state pending-upgrade.
		latest := strings.Fields(p.revisions()["alt-apps/alt-backend"])[0]
		name := "sh.helm.release.v1.alt-backend.v" + latest
		manifest := p.kubectl("get", "secret", name, "-n", "alt-apps", "-o", "yaml")
		next := itoa(atoi(latest) + 1)
		forged := regexp.MustCompile(`(?m)^(\s+)version: "`+latest+`"$`).ReplaceAllString(manifest, `${1}version: "`+next+`"`)
		forged = regexp.MustCompile(`(?m)^(\s+)status: deployed$`).ReplaceAllString(forged, `${1}status: pending-upgrade`)
		forged = strings.ReplaceAll(forged, name, "sh.helm.release.v1.alt-backend.v"+next)
		forged = regexp.MustCompile(`(?m)^\s+(resourceVersion|uid|creationTimestamp):.*\n`).ReplaceAllString(forged, "")
		f := filepath.Join(t.TempDir(), "pending.yaml")
		os.WriteFile(f, []byte(forged), 0o644)
		p.kubectl("create", "-f", f)

		out, err := p.mage(nil, "all")
		if err != nil {
			t.Fatalf("all did not recover a pending release: %v", err)
		}
		if !strings.Contains(out, "alt-apps/alt-backend was left pending-upgrade") {
			t.Error("the run does not say what it recovered")
		}
		want := all("unchanged")
		want["alt-core-services"] = "deployed"
		expect(t, out, want)
		if st := p.revisions()["alt-apps/alt-backend"]; !strings.HasSuffix(st, "deployed") {
			t.Errorf("alt-backend is %s", st)
		}
	})

	t.Run("Ctrl-C in the middle of a layer", func(t *testing.T) {
		values := filepath.Join(p.dir, "skaffold", "08-operations", "values", "monitoring.yaml")
		b, _ := os.ReadFile(values)
		os.WriteFile(values, append(b, []byte("\n# changed by TestFaultsConverge\n")...), 0o644)
		out, cmd := p.allUntil(t, "alt-operations: skaffold deploy", 1500*time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		t.Logf("interrupted all:\n%s", out.String())
		if err == nil {
			t.Fatal("an interrupted run exited 0")
		}
		if strings.Contains(out.String(), "cleanup timeout exceeded") {
			t.Error("the run did not stop within mage's 5 s after Ctrl-C")
		}
		got, err := p.mage(nil, "all")
		if err != nil {
			t.Fatalf("the run after Ctrl-C did not converge: %v", err)
		}
		if a := actions(got)["alt-operations"]; a != "deployed" {
			t.Errorf("alt-operations after Ctrl-C: %q, want deployed", a)
		}
		for rel, st := range p.revisions() {
			if !strings.HasSuffix(st, "deployed") {
				t.Errorf("release %s is %s", rel, st)
			}
		}
	})

	t.Run("the API server killed in the middle of a layer", func(t *testing.T) {
		values := filepath.Join(p.dir, "skaffold", "07-processing", "values", "tag-generator.yaml")
		b, _ := os.ReadFile(values)
		os.WriteFile(values, append(b, []byte("\n# changed by TestFaultsConverge (API server)\n")...), 0o644)
		out, cmd := p.allUntil(t, "alt-processing: skaffold deploy", time.Second)
		pid, err := os.ReadFile(filepath.Join(p.dir, ".cache", "sim", "pids", "kube-apiserver.pid"))
		if err != nil {
			t.Fatal(err)
		}
		// The pid file holds the pid, then its start time.
		if err := syscall.Kill(atoi(strings.Fields(string(pid))[0]), syscall.SIGKILL); err != nil {
			t.Fatalf("kill kube-apiserver: %v", err)
		}
		err = cmd.Wait()
		t.Logf("all with the API server killed:\n%s", out.String())
		if err == nil {
			t.Fatal("a run whose API server died exited 0")
		}
		if !strings.Contains(out.String(), "layer alt-processing") {
			t.Error("the failure does not name the layer")
		}
		got, err := p.mage(nil, "all")
		if err != nil {
			t.Fatalf("the run after the API server died did not converge: %v", err)
		}
		if a := actions(got)["alt-processing"]; a != "deployed" {
			t.Errorf("alt-processing after the API server died: %q, want deployed", a)
		}
		for rel, st := range p.revisions() {
			if !strings.HasSuffix(st, "deployed") {
				t.Errorf("release %s is %s", rel, st)
			}
		}
	})

	t.Run("the deploy tools deleted from the cache between two runs", func(t *testing.T) {
		// A private cache: every tool hard-linked from the real one but
		// helm and skaffold, which the next run must build again.
		cache := t.TempDir()
		err := filepath.WalkDir(p.tc.Dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(p.tc.Dir, path)
			top := strings.SplitN(rel, string(filepath.Separator), 2)[0]
			if strings.HasPrefix(top, "helm-v") || strings.HasPrefix(top, "skaffold-v") || top == "src" {
				if d.IsDir() && rel == top {
					return filepath.SkipDir
				}
			}
			dst := filepath.Join(cache, rel)
			if d.IsDir() {
				return os.MkdirAll(dst, 0o755)
			}
			return os.Link(path, dst)
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.mage([]string{"ALT_TOOLS_DIR=" + cache}, "all")
		if err != nil {
			t.Fatalf("all with helm and skaffold gone from the cache: %v", err)
		}
		for _, want := range []string{"build helm v3.22.0", "build skaffold v2.16.1"} {
			if !strings.Contains(out, want) {
				t.Errorf("the run does not say %q", want)
			}
		}
		expect(t, out, all("unchanged"))
	})

	t.Run("a Job that fails", func(t *testing.T) {
		// Kratos' migration Job (a Helm hook of 05) gets a 10 s deadline and
		// asks for more CPU than the namespace quota allows: no pod ever
		// starts and the Job fails with DeadlineExceeded.
		values := filepath.Join(p.dir, "skaffold", "05-auth-platform", "values", "kratos.yaml")
		good, err := os.ReadFile(values)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(values, append(append([]byte{}, good...), []byte(`
migration:
  activeDeadlineSeconds: 10
  resources:
    requests: {cpu: "500", memory: 64Mi}
    limits: {cpu: "500", memory: 256Mi}
`)...), 0o644)
		out, err := p.mage(nil, "all")
		if err == nil {
			t.Fatal("all succeeded with a failing migration Job")
		}
		for _, want := range []string{"layer alt-auth-platform", "kratos-migrate", "DeadlineExceeded"} {
			if !strings.Contains(out, want) {
				t.Errorf("the failure does not mention %q", want)
			}
		}
		got := actions(out)
		// 06 needs 05: not started. 04 and 07 do not: they finish (here,
		// unchanged).
		if got["alt-auth-platform"] != "failed" || got["alt-application"] != "not started" ||
			got["alt-core-services"] != "unchanged" || got["alt-processing"] != "unchanged" {
			t.Errorf("actions = %v", got)
		}
		os.WriteFile(values, good, 0o644)
		out, err = p.mage(nil, "all")
		if err != nil {
			t.Fatalf("the run after the Job was fixed did not converge: %v", err)
		}
		if a := actions(out)["alt-auth-platform"]; a != "deployed" {
			t.Errorf("alt-auth-platform after the fix: %q, want deployed", a)
		}
		for rel, st := range p.revisions() {
			if !strings.HasSuffix(st, "deployed") {
				t.Errorf("release %s is %s", rel, st)
			}
		}
	})

}

// allUntil starts `all` in the background and returns once its output
// shows marker (or after a minute) and settle has passed: the moment to
// break something in the middle of a layer.
func (p *platform) allUntil(t *testing.T, marker string, settle time.Duration) (*syncBuffer, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(mage(t), "all")
	cmd.Dir, cmd.Env = p.dir, p.env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), marker) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(settle)
	return out, cmd
}

// syncBuffer is a buffer a running command writes to while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}
