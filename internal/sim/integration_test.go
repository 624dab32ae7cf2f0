package sim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/tools"
)

// TestCluster starts a sim cluster in a temporary repository, deploys a
// chart with every workload kind through Helm and checks that each becomes
// ready or complete, that Pod Security admission rejects a privileged pod,
// that webhooks never block a request, that a dead component is named and
// recovered, and that Down leaves no process and no port behind.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane: not with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	cfg, err := config.FromEnvironment()
	if cfg == nil || cfg.ToolsDir == "" {
		t.Fatalf("tools cache: %v", err)
	}
	r := &run.Runner{Verbose: testing.Verbose()}
	cache := &tools.Cache{Dir: cfg.ToolsDir, Runner: r}
	repo := t.TempDir()
	c := New(repo, cache, r)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range componentNames {
				t.Logf("last lines of %s:\n%s", n, tailFile(c.layout().logFile(n), 20))
			}
		}
		if err := c.Down(context.Background(), true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	// Build or find every binary first, so the timings below are the
	// cluster's own.
	bins, err := c.binaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	helm, err := cache.Ensure(ctx, "helm")
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	kubeconfig, err := c.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	t.Logf("Up from nothing: %s", cold)
	if want := filepath.Join(repo, ".cache", "sim", "kubeconfig"); kubeconfig != want || kubeconfig != c.Kubeconfig() {
		t.Fatalf("kubeconfig %s, want %s", kubeconfig, want)
	}

	// A healthy cluster is reused as it is: no component is restarted.
	// (How long that takes is measured here, not asserted.)
	pids := map[string]proc{}
	for _, n := range componentNames {
		p, err := readPidFile(c.layout().pidFile(n))
		if err != nil {
			t.Fatal(err)
		}
		pids[n] = p
	}
	start = time.Now()
	if _, err := c.Up(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Up of a healthy cluster: %s", time.Since(start))
	for _, n := range componentNames {
		if p, err := readPidFile(c.layout().pidFile(n)); err != nil || p != pids[n] {
			t.Errorf("Up of a healthy cluster restarted %s (%v -> %v, %v)", n, pids[n], p, err)
		}
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("status of a healthy cluster: %v", err)
	}

	kr := *r
	kr.Env = cache.Env(kubeconfig)
	kubectl := func(args ...string) (string, error) {
		return kr.Output(ctx, bins["kubectl"], append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := kubectl(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	waitFor := func(what string, d time.Duration, ok func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			done, last := ok()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after %s (last: %s)", what, d, last)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// Workloads in a namespace that enforces Pod Security "restricted",
	// like every alt-* namespace.
	const ns = "sim-test"
	must("create", "namespace", ns)
	must("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
	installed := time.Now()
	chart, _ := filepath.Abs(filepath.Join("testdata", "chart"))
	if err := kr.Run(ctx, helm["helm"], "--kubeconfig", kubeconfig, "install", "simtest", chart, "-n", ns,
		"--wait", "--wait-for-jobs", "--timeout", "90s"); err != nil {
		t.Fatal(err)
	}
	t.Logf("helm install --wait --wait-for-jobs: %s", time.Since(installed).Round(100*time.Millisecond))

	t.Run("workloads", func(t *testing.T) {
		must("wait", "-n", ns, "--for=condition=Available", "deployment/web", "--timeout=30s")
		if out := must("get", "-n", ns, "statefulset/db", "-o", "jsonpath={.status.readyReplicas}/{.spec.replicas}"); out != "1/1" {
			t.Errorf("statefulset db ready %s, want 1/1", out)
		}
		if out := must("get", "-n", ns, "pvc/data-db-0", "-o", "jsonpath={.status.phase} {.spec.storageClassName} {.spec.volumeName}"); !strings.HasPrefix(out, "Bound "+StorageClass+" pvc-") {
			t.Errorf("claim data-db-0: %q, want Bound to a pvc-* volume of class %s", out, StorageClass)
		}
		must("wait", "-n", ns, "--for=condition=Complete", "job/migrate", "--timeout=30s")
		if out := must("get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=web", "-o", "jsonpath={.items[*].status.phase}"); out != "Running Running" {
			t.Errorf("web pods %q, want Running Running", out)
		}
	})

	t.Run("pod security rejects a privileged pod", func(t *testing.T) {
		pod := filepath.Join(t.TempDir(), "pod.yaml")
		os.WriteFile(pod, []byte(`apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
    securityContext: {privileged: true}
`), 0o644)
		_, err := kubectl("apply", "-n", ns, "-f", pod)
		if err == nil {
			t.Fatal("a privileged pod was admitted into a restricted namespace")
		}
		for _, w := range []string{`violates PodSecurity "restricted:latest"`, "privileged", "securityContext.privileged=true"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("rejection lacks %q: %v", w, err)
			}
		}
	})

	t.Run("webhooks never block a request", func(t *testing.T) {
		hook := filepath.Join(t.TempDir(), "hook.yaml")
		os.WriteFile(hook, []byte(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: unserved}
webhooks:
- name: unserved.sim.test
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 10
  clientConfig:
    service: {namespace: sim-test, name: nobody, port: 443}
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
`), 0o644)
		must("apply", "-f", hook)
		begin := time.Now()
		must("create", "configmap", "-n", ns, "after-webhook", "--from-literal=a=b")
		if d := time.Since(begin); d > 5*time.Second {
			t.Errorf("a request matched by an unserved webhook took %s", d)
		}
		must("delete", "validatingwebhookconfiguration", "unserved")
	})

	t.Run("dead components are named and recovered", func(t *testing.T) {
		// kube-scheduler, and kwok: a new kwok must take over the nodes at
		// once, not after the dead one's node leases expire (40 s).
		dead := map[string]proc{}
		for _, n := range []string{Scheduler, Kwok} {
			p, err := readPidFile(c.layout().pidFile(n))
			if err != nil {
				t.Fatal(err)
			}
			syscall.Kill(p.PID, syscall.SIGKILL)
			dead[n] = p
		}
		waitFor("kube-scheduler and kwok to die", 10*time.Second, func() (bool, string) {
			return !dead[Scheduler].alive() && !dead[Kwok].alive(), "alive"
		})
		comps, err := c.Status(ctx)
		if err == nil || !strings.Contains(err.Error(), Scheduler) || !strings.Contains(err.Error(), Kwok) {
			t.Fatalf("status with kube-scheduler and kwok dead: %v; want an error naming both", err)
		}
		for _, cp := range comps {
			if _, isDead := dead[cp.Name]; cp.Healthy == isDead {
				t.Errorf("status: %s healthy=%v (%s)", cp.Name, cp.Healthy, cp.Detail)
			}
		}
		begin := time.Now()
		if _, err := c.Up(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("Up restarting kube-scheduler and kwok: %s", time.Since(begin).Round(100*time.Millisecond))
		if _, err := c.Status(ctx); err != nil {
			t.Fatalf("status after recovery: %v", err)
		}
		for n, p := range dead {
			if q, _ := readPidFile(c.layout().pidFile(n)); q.PID == p.PID {
				t.Errorf("%s has its old PID", n)
			}
		}
		// The new scheduler places new pods and the new kwok runs them.
		must("scale", "-n", ns, "deployment/web", "--replicas=3")
		waitFor("3 ready web pods", 15*time.Second, func() (bool, string) {
			out, _ := kubectl("get", "-n", ns, "deployment/web", "-o", "jsonpath={.status.readyReplicas}")
			return out == "3", out
		})
	})

	t.Run("the CronJob controller creates a Job that completes", func(t *testing.T) {
		// Schedule "* * * * *": the first run is at most a minute after install.
		waitFor("a completed Job of CronJob tick", time.Until(installed.Add(80*time.Second)), func() (bool, string) {
			out, _ := kubectl("get", "jobs", "-n", ns, "-o",
				`jsonpath={range .items[?(@.metadata.ownerReferences[0].kind=="CronJob")]}{.metadata.name}={.status.succeeded};{end}`)
			return strings.Contains(out, "=1;"), out
		})
	})

	// Down stops every process and frees every port, keeping the state.
	st, err := c.readState()
	if err != nil {
		t.Fatal(err)
	}
	var procs []proc
	for _, n := range componentNames {
		p, err := readPidFile(c.layout().pidFile(n))
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	start = time.Now()
	if err := c.Down(ctx, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("Down: %s", time.Since(start).Round(100*time.Millisecond))
	for i, p := range procs {
		if p.alive() {
			t.Errorf("%s (pid %d) still runs after Down", componentNames[i], p.PID)
		}
	}
	for _, port := range st.Ports.list() {
		if !portFree(*port) {
			t.Errorf("port %d still taken after Down", *port)
		}
	}
	if _, err := c.Status(ctx); err == nil {
		t.Error("status of a stopped cluster: want an error")
	}

	// Up after Down keeps what etcd holds.
	start = time.Now()
	if _, err := c.Up(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Up after Down (state kept): %s", time.Since(start).Round(100*time.Millisecond))
	if out := must("get", "-n", ns, "pvc/data-db-0", "-o", "jsonpath={.status.phase}"); out != "Bound" {
		t.Errorf("claim after restart: %q, want Bound", out)
	}
	// New pods run at once: the new kwok took over the nodes.
	must("scale", "-n", ns, "deployment/web", "--replicas=4")
	waitFor("4 ready web pods after restart", 15*time.Second, func() (bool, string) {
		out, _ := kubectl("get", "-n", ns, "deployment/web", "-o", "jsonpath={.status.readyReplicas}")
		return out == "4", out
	})

	// Down with wipe deletes the state.
	if err := c.Down(ctx, true); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(c.Dir)
	for _, e := range entries {
		if e.Name() != ".lock" {
			t.Errorf("after Down(wipe): %s left in %s", e.Name(), c.Dir)
		}
	}
	if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "no cluster") {
		t.Errorf("status after wipe: %v, want \"no cluster\"", err)
	}
}
