package engine_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/engine"
)

// TestDayToDay runs the day-to-day targets against one deployed sim
// platform, in the order a developer meets them: status on a healthy
// platform, then on a broken Deployment; watch on a chart file; down of
// one layer, down of everything, and dev again, which finds the same
// claims and secrets.
func TestDayToDay(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.mage(nil, "all"); err != nil {
		t.Fatalf("cold all: %v", err)
	}
	before := p.claimsAndSecrets()
	if !strings.Contains(before, "alt-database/data-postgres-0=") || !strings.Contains(before, "alt-database/postgres-credentials=") {
		t.Fatalf("no postgres claim or credentials to watch:\n%s", before)
	}

	t.Run("status of a healthy platform, as JSON", func(t *testing.T) {
		out, err := p.mageStdout(nil, "status", "-json")
		if err != nil {
			t.Fatalf("status of a healthy platform failed: %v", err)
		}
		var st engine.PlatformStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status -json printed no JSON on stdout: %v\n%s", err, out)
		}
		if !st.Healthy || len(st.Layers) != len(layers) {
			t.Errorf("healthy=%v, %d layers, problems %v", st.Healthy, len(st.Layers), st.Problems)
		}
		for _, l := range st.Layers {
			if l.State != "up" || l.Inputs != "match" {
				t.Errorf("%s: state %q, inputs %q", l.Layer, l.State, l.Inputs)
			}
			for _, r := range l.Releases {
				if r.State != "deployed" || r.Revision < 1 || r.Worst != "" {
					t.Errorf("%s: %+v", l.Layer, r)
				}
			}
		}
	})

	t.Run("status passes over a Job's failed attempt that a retry made good", func(t *testing.T) {
		// A backup Job of the release that completed, and a pod of it that
		// failed before (its first attempt).
		restricted := `"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},` +
			`"containers":[{"name":"backup","image":"alt/backup","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]`
		job := filepath.Join(t.TempDir(), "job.json")
		os.WriteFile(job, []byte(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"retried","namespace":"alt-operations"},`+
			`"spec":{"template":{"metadata":{"labels":{"app.kubernetes.io/instance":"backups"}},"spec":{"restartPolicy":"Never",`+restricted+`}}}}`), 0o644)
		p.kubectl("apply", "-f", job)
		defer p.kubectl("delete", "job", "retried", "-n", "alt-operations", "--cascade=foreground")
		p.kubectl("wait", "--for=condition=Complete", "job/retried", "-n", "alt-operations", "--timeout=60s")
		uid := p.kubectl("get", "job", "retried", "-n", "alt-operations", "-o", "jsonpath={.metadata.uid}")
		pod := filepath.Join(t.TempDir(), "pod.json")
		os.WriteFile(pod, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"retried-first","namespace":"alt-operations",`+
			`"labels":{"app.kubernetes.io/instance":"backups"},`+
			`"ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"retried","uid":"`+uid+`","controller":true}]},`+
			`"spec":{"restartPolicy":"Never","nodeSelector":{"alt-platform.io/nowhere":"true"},`+restricted+`}}`), 0o644)
		p.kubectl("apply", "-f", pod)
		p.kubectl("patch", "pod", "retried-first", "-n", "alt-operations", "--subresource=status", "--type=merge", "-p", `{"status":{"phase":"Failed"}}`)
		if out, err := p.mage(nil, "status"); err != nil {
			t.Errorf("status with a completed Job's failed attempt: %v\n%s", err, out)
		}
	})

	t.Run("status passes over a pod on its way out", func(t *testing.T) {
		// A rollout's old pod, not ready while it stops: a pod of the
		// release, never scheduled, deleted and held by a finalizer.
		p.kubectl("run", "leaving", "-n", "alt-ingress", "--image=alt/leaving", "--restart=Never",
			"--labels=app.kubernetes.io/instance=nginx-external",
			`--overrides={"metadata":{"finalizers":["alt-platform.io/test"]},"spec":{"nodeSelector":{"alt-platform.io/nowhere":"true"},`+
				`"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},`+
				`"containers":[{"name":"leaving","image":"alt/leaving","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}`)
		p.kubectl("delete", "pod", "leaving", "-n", "alt-ingress", "--wait=false")
		defer p.kubectl("patch", "pod", "leaving", "-n", "alt-ingress", "--type=json", `-p=[{"op":"remove","path":"/metadata/finalizers"}]`)
		if out, err := p.mage(nil, "status"); err != nil {
			t.Errorf("status with a pod being deleted: %v\n%s", err, out)
		}
	})

	t.Run("status names a broken Deployment and its reason; logs shows its events", func(t *testing.T) {
		// A node selector no node has: the new pod is never scheduled.
		p.kubectl("patch", "deployment", "nginx-external", "-n", "alt-ingress", "-p",
			`{"spec":{"template":{"spec":{"nodeSelector":{"alt-platform.io/nowhere":"true"}}}}}`)
		var out string
		var err error
		// The scheduler's verdict takes a moment to reach the pod.
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
			if out, err = p.mage(nil, "status"); err != nil && strings.Contains(out, "Unschedulable") {
				break
			}
		}
		if err == nil {
			t.Fatal("status exited 0 with a broken Deployment")
		}
		for _, want := range []string{"alt-application: release alt-ingress/nginx-external", "Deployment alt-ingress/nginx-external", "Unschedulable", "node affinity/selector"} {
			if !strings.Contains(out, want) {
				t.Errorf("status does not say %q", want)
			}
		}
		// logs on sim: no container runs; the pods and their events instead.
		out, err = p.mage(nil, "logs", "nginx-external")
		if err != nil {
			t.Errorf("logs on sim: %v", err)
		}
		for _, want := range []string{"NO CONTAINER RUNS, so nginx-external has no logs", "pod alt-ingress/nginx-external-", "event: Warning FailedScheduling"} {
			if !strings.Contains(out, want) {
				t.Errorf("logs on sim does not say %q", want)
			}
		}
		if out, err = p.mage(nil, "open"); err == nil || !strings.Contains(out, "nothing to open: on the sim cluster no container runs") {
			t.Errorf("open on sim: err %v, does not say there is nothing to open", err)
		}
		p.kubectl("patch", "deployment", "nginx-external", "-n", "alt-ingress", "-p",
			`{"spec":{"template":{"spec":{"nodeSelector":{"alt-platform.io/nowhere":null}}}}}`)
		p.kubectl("rollout", "status", "deployment/nginx-external", "-n", "alt-ingress", "--timeout=60s")
	})

	t.Run("bad arguments change nothing", func(t *testing.T) {
		revs := p.revisions()
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"watch", "nosuch"}, "unknown service nosuch (profile dev); the known services are: alt-backend, alt-frontend"},
			{[]string{"down", "operations"}, "give -layer=NAME"},
			{[]string{"down", "-layer=nosuch"}, `no layer "nosuch"; the layers are: foundation,`},
			{[]string{"down", "-purge=prod-cluster"}, "-purge=prod-cluster does not name this cluster"},
		} {
			out, err := p.mage(nil, c.args...)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("mage %s: err %v, output does not say %q", strings.Join(c.args, " "), err, c.want)
			}
		}
		if after := p.revisions(); !equal(revs, after) {
			t.Errorf("bad arguments changed releases: %v -> %v", revs, after)
		}
	})

	t.Run("watch redeploys only the layer of a saved chart file", func(t *testing.T) {
		revs := p.revisions()
		cmd := exec.Command(mage(t), "watch", "monitoring")
		cmd.Dir, cmd.Env = p.dir, p.env
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGINT)
			stopped := make(chan error, 1)
			go func() { stopped <- cmd.Wait() }()
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Error("watch did not stop within 10 s of Ctrl-C")
			}
			t.Logf("mage watch monitoring:\n%s", out.String())
		}()
		if !waitFor(out, "watching", 3*time.Minute) {
			t.Fatal("watch never said it was watching")
		}
		values := filepath.Join(p.dir, "charts", "monitoring", "values.yaml")
		b, _ := os.ReadFile(values)
		changed := regexp.MustCompile(`(?m)^(\s*retention:\s*).*$`).ReplaceAllString(string(b), "${1}11d")
		if changed == string(b) {
			t.Fatal("charts/monitoring/values.yaml has no retention: value to change")
		}
		saved := time.Now()
		os.WriteFile(values, []byte(changed), 0o644)
		if !waitFor(out, "changed: redeploying alt-operations", 5*time.Second) {
			t.Fatal("watch did not start redeploying alt-operations within 5 s of the save")
		}
		t.Logf("save to redeploy started: %s", time.Since(saved).Round(10*time.Millisecond))
		if !waitFor(out, "alt-operations deployed in", 3*time.Minute) {
			t.Fatal("watch did not redeploy alt-operations after the save")
		}
		took := time.Since(saved)
		t.Logf("save to verified redeploy of alt-operations: %s", took.Round(100*time.Millisecond))
		if !strings.Contains(out.String(), "charts/monitoring/values.yaml changed: redeploying alt-operations") {
			t.Error("watch does not name the file it saw change")
		}
		after := p.revisions()
		for rel, rev := range revs {
			inLayer := rel == "alt-observability/monitoring" || rel == "alt-operations/backups"
			if rel == "alt-observability/monitoring" && after[rel] == rev {
				t.Errorf("monitoring was not redeployed: %s", rev)
			}
			if !inLayer && after[rel] != rev {
				t.Errorf("release %s of another layer changed: %s -> %s", rel, rev, after[rel])
			}
		}
	})

	t.Run("down one layer, down everything, dev brings back the same claims and secrets", func(t *testing.T) {
		out, err := p.mage(nil, "down", "-layer=operations")
		if err != nil {
			t.Fatalf("down -layer=operations: %v", err)
		}
		revs := p.revisions()
		for _, gone := range []string{"alt-observability/monitoring", "alt-operations/backups"} {
			if _, ok := revs[gone]; ok {
				t.Errorf("%s is still installed after down -layer=operations", gone)
			}
		}
		if len(revs) < 17 {
			t.Errorf("down -layer=operations took down more than 08: %v", revs)
		}
		out, err = p.mage(nil, "status")
		if err == nil || !strings.Contains(out, "alt-operations: not deployed") {
			t.Errorf("status after down -layer=operations: err %v, no \"alt-operations: not deployed\"", err)
		}

		out, err = p.mage(nil, "down")
		if err != nil {
			t.Fatalf("down: %v", err)
		}
		if revs := p.revisions(); len(revs) != 0 {
			t.Errorf("releases left after down: %v", revs)
		}
		// Reverse graph order: what needs a layer goes before it.
		order := regexp.MustCompile(`(?m)^ • (alt-[a-z-]+) \(\d\d-[a-z-]+\): uninstall$`).FindAllStringSubmatch(out, -1)
		var got []string
		for _, m := range order {
			got = append(got, m[1])
		}
		want := []string{"alt-operations", "alt-processing", "alt-application", "alt-auth-platform", "alt-core-services", "alt-infrastructure", "alt-foundation"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("down order %v, want %v", got, want)
		}
		if p.kubectl("get", "lease", "alt-platform-deploy", "-n", "kube-system", "--ignore-not-found", "-o", "name") != "" {
			t.Error("down left the deploy lock behind")
		}
		if kept := p.claimsAndSecrets(); kept != before {
			t.Errorf("down lost claims or generated secrets:\nbefore:\n%s\nafter:\n%s", before, kept)
		}

		out, err = p.mage(nil, "dev")
		if err != nil {
			t.Fatalf("dev after down: %v", err)
		}
		expect(t, out, all("deployed"))
		if again := p.claimsAndSecrets(); again != before {
			t.Errorf("dev after down did not find the same claims and secrets:\nbefore:\n%s\nafter:\n%s", before, again)
		}
		if _, err := p.mage(nil, "status"); err != nil {
			t.Errorf("status after dev: %v", err)
		}
	})
}

// claimsAndSecrets are what must survive a down: the claims, by UID (a
// claim deleted and made again counts as lost), and the Secrets Helm
// made, by content.
func (p *platform) claimsAndSecrets() string {
	return p.kubectl("get", "pvc", "-A", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.metadata.uid}{"\n"}{end}`) +
		p.kubectl("get", "secret", "-A", "-l", "app.kubernetes.io/managed-by=Helm", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.data}{"\n"}{end}`)
}

// mageStdout runs targets in the copy and returns their stdout only.
func (p *platform) mageStdout(env []string, targets ...string) (string, error) {
	cmd := exec.Command(mage(p.t), targets...)
	cmd.Dir = p.dir
	cmd.Env = append(append([]string{}, p.env...), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	p.t.Logf("mage %s:\n%s%s", strings.Join(targets, " "), stderr.String(), out)
	return string(out), err
}

func waitFor(out *syncBuffer, marker string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if strings.Contains(out.String(), marker) {
			return true
		}
	}
	return false
}
