package kind

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/kindimage"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/tools"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRealCluster makes a real kind cluster and registry (on free ports,
// under a name of its own, so a developer's cluster is not in the way),
// pulls an image through the registry from inside the node, and checks
// reuse, drift, logs and that the user's kubeconfig is left alone. Where no
// image registry answers it builds (or reuses) the offline images first,
// as kind:image does, and the cluster runs on them.
func TestRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("makes a real kind cluster (minutes); skipped with -short")
	}
	if !config.DockerAnswers() {
		t.Skip("no Docker daemon answers (DOCKER_HOST or /var/run/docker.sock): the real kind cluster test needs one")
	}
	cfg, err := config.FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	r := &run.Runner{}
	// The images of the offline path, by the code of kind:image. The test
	// takes that path unless ALT_KIND_OFFLINE=0 asks for the public images:
	// it sends nothing to a public registry to find out whether one answers.
	images := &kindimage.Builder{Tools: &tools.Cache{Dir: cfg.ToolsDir, Runner: r}, Runner: r}
	budget := 15 * time.Minute
	mode := "on"
	if cfg.KindOffline == "off" {
		mode = "off"
	}
	offline := mode == "on"
	if offline && !images.Present(context.Background()) {
		const build = 40 * time.Minute
		if d, ok := t.Deadline(); ok && time.Until(d) < build+budget {
			t.Skipf("the offline kind images (%s, %s) this test uses are not built yet: building them takes about "+
				"30 minutes on 2 cores, more than this test's -timeout leaves; run `go run mage.go kind:image` first, or go test -timeout=90m",
				kindimage.NodeImage, kindimage.RegistryImage)
		}
		budget += build
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	ports := freePorts(t, 3)
	name := fmt.Sprintf("alt-test-%d", os.Getpid()%100000)
	repo := t.TempDir()
	opts := Options{Repo: repo, Name: name, RegistryPort: ports[2], Runner: r, Offline: mode, Images: images,
		Ports: []Port{{Host: int32(ports[0]), Node: 30080, Service: "http"}, {Host: int32(ports[1]), Node: 30443, Service: "https"}}}
	p := New(opts)
	t.Cleanup(func() {
		if err := p.Delete(context.Background(), false); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	// The user's kubeconfig must not change.
	userKC := filepath.Join(t.TempDir(), "config")
	const userContent = "apiVersion: v1\nkind: Config\ncurrent-context: mine\n"
	if err := os.WriteFile(userKC, []byte(userContent), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", userKC)

	if err := p.Preflight(ctx); err != nil {
		t.Fatal(err)
	}
	kc, err := p.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp := name + "-control-plane"
	id := func() string {
		out, err := r.Output(ctx, "docker", "container", "inspect", "--format", "{{.Id}}", cp)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	first := id()

	// Reused, not recreated; its own ports do not fail the pre-flight.
	if _, err := p.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if id() != first {
		t.Error("the second Ensure recreated the cluster")
	}
	if err := p.Preflight(ctx); err != nil {
		t.Errorf("pre-flight on the running cluster: %v", err)
	}

	// The registry works from inside the node through hosts.toml.
	probe := p.Spec().RegistryHost() + "/alt-probe:1"
	for _, args := range [][]string{
		{"tag", p.Spec().RegistryImage, probe},
		{"push", probe},
		{"exec", cp, "crictl", "pull", probe},
	} {
		if err := r.Run(ctx, "docker", args...); err != nil {
			t.Fatalf("pulling through the local registry: %v", err)
		}
	}
	cm, err := (clientKube{}).client(kc)
	if err != nil {
		t.Fatal(err)
	}
	// Pods run: CoreDNS (pod sandboxes on the pause image, the node's CNI,
	// images from the node's own containerd) and kube-proxy become ready.
	ready := func() string {
		d, err := cm.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if d.Status.AvailableReplicas == 0 || d.Status.AvailableReplicas != d.Status.Replicas {
			return fmt.Sprintf("coredns: %d of %d replicas available", d.Status.AvailableReplicas, d.Status.Replicas)
		}
		ds, err := cm.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if ds.Status.NumberReady == 0 || ds.Status.NumberReady != ds.Status.DesiredNumberScheduled {
			return fmt.Sprintf("kube-proxy: %d of %d ready", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
		}
		return ""
	}
	for deadline := time.Now().Add(3 * time.Minute); ; {
		why := ready()
		if why == "" {
			break
		}
		if time.Now().After(deadline) {
			pods, _ := r.Output(ctx, "docker", "exec", cp, "crictl", "ps", "-a")
			t.Fatalf("system pods not ready within 3m: %s\n%s", why, pods)
		}
		time.Sleep(2 * time.Second)
	}
	got, err := cm.CoreV1().ConfigMaps("kube-public").Get(ctx, "local-registry-hosting", metav1.GetOptions{})
	if err != nil || !strings.Contains(got.Data["localRegistryHosting.v1"], p.Spec().RegistryHost()) {
		t.Errorf("local-registry-hosting: %v %v", got, err)
	}

	// Drift is reported, nothing changed.
	drifted := opts
	drifted.Ports = []Port{{Host: int32(ports[0]), Node: 30081, Service: "http"}}
	var de *DriftError
	if _, err := New(drifted).Ensure(ctx); !errors.As(err, &de) {
		t.Errorf("want a DriftError, got %v", err)
	}
	if id() != first {
		t.Error("drift changed the cluster")
	}

	dir, err := p.CollectLogs("")
	if err != nil {
		t.Error(err)
	} else if _, err := os.Stat(filepath.Join(dir, "kind-version.txt")); err != nil {
		t.Errorf("logs in %s: %v", dir, err)
	}

	if b, _ := os.ReadFile(userKC); string(b) != userContent {
		t.Errorf("the user's kubeconfig changed:\n%s", b)
	}
}

func freePorts(t *testing.T, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
