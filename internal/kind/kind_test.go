package kind

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) {
	ui.SetOutput(discard{})
	os.Exit(m.Run())
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func TestConfig(t *testing.T) {
	s := NewSpec("alt", 5001)
	raw, err := s.ConfigYAML()
	if err != nil {
		t.Fatal(err)
	}
	// What kind reads: the v1alpha4 Cluster, no unknown field.
	var c v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("not a kind v1alpha4 Cluster: %v\n%s", err, raw)
	}
	if c.APIVersion != "kind.x-k8s.io/v1alpha4" || c.Kind != "Cluster" || c.Name != "alt" {
		t.Errorf("type/name: %s %s %s", c.APIVersion, c.Kind, c.Name)
	}
	if len(c.Nodes) != 1 || c.Nodes[0].Role != v1alpha4.ControlPlaneRole {
		t.Fatalf("want one control-plane node, got %+v", c.Nodes)
	}
	n := c.Nodes[0]
	if n.Image != NodeImage {
		t.Errorf("node image %q, want %q", n.Image, NodeImage)
	}
	want := []v1alpha4.PortMapping{
		{ContainerPort: 30080, HostPort: 80, ListenAddress: "127.0.0.1", Protocol: "TCP"},
		{ContainerPort: 30443, HostPort: 443, ListenAddress: "127.0.0.1", Protocol: "TCP"},
	}
	if len(n.ExtraPortMappings) != len(want) {
		t.Fatalf("port mappings %+v, want %+v", n.ExtraPortMappings, want)
	}
	for i := range want {
		if n.ExtraPortMappings[i] != want[i] {
			t.Errorf("port mapping %d: %+v, want %+v", i, n.ExtraPortMappings[i], want[i])
		}
	}
	// Registry through hosts.toml: config_path set, no deprecated mirrors.
	if len(c.ContainerdConfigPatches) != 1 {
		t.Fatalf("containerd patches: %q", c.ContainerdConfigPatches)
	}
	patch := c.ContainerdConfigPatches[0]
	if strings.Contains(patch, "mirrors") || strings.Contains(patch, "registry.configs") {
		t.Errorf("deprecated registry patch: %s", patch)
	}
	got, err := containerdConfigPath(baseContainerdConfig + "\n" + patch)
	if err != nil || got != CertsDir {
		t.Errorf("config_path after the patch = %q, %v; want %s", got, err, CertsDir)
	}
}

func TestNodeImagePinnedToTheSimVersion(t *testing.T) {
	m := regexp.MustCompile(`^kindest/node:v1\.(\d+)\.\d+@sha256:[0-9a-f]{64}$`).FindStringSubmatch(NodeImage)
	if m == nil {
		t.Fatalf("NodeImage %q: want kindest/node:v1.x.y@sha256:<digest>", NodeImage)
	}
	api, err := tools.Lookup("kube-apiserver")
	if err != nil {
		t.Fatal(err)
	}
	if minor := strings.Split(api.Version, ".")[1]; minor != m[1] {
		t.Errorf("kind runs Kubernetes 1.%s, the sim cluster %s: keep them on one minor", m[1], api.Version)
	}
	if !regexp.MustCompile(`^registry:2@sha256:[0-9a-f]{64}$`).MatchString(RegistryImage) {
		t.Errorf("RegistryImage %q is not pinned by digest", RegistryImage)
	}
}

// The http mapping must land on the nodePort nginx-external really has.
func TestPortsMatchTheNginxValues(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "skaffold", "06-application", "values", "nginx-external.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Service struct {
			Type          string `json:"type"`
			NodePort      int32  `json:"nodePort"`
			HTTPSNodePort int32  `json:"httpsNodePort"`
		} `json:"service"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Service.Type != "NodePort" || v.Service.NodePort != Ports[0].Node {
		t.Errorf("nginx-external dev Service: %s nodePort %d; kind maps host %d to %d", v.Service.Type, v.Service.NodePort, Ports[0].Host, Ports[0].Node)
	}
	if v.Service.HTTPSNodePort != 0 && v.Service.HTTPSNodePort != Ports[1].Node {
		t.Errorf("nginx-external https nodePort %d; kind maps host 443 to %d", v.Service.HTTPSNodePort, Ports[1].Node)
	}
}

func TestHostsTOMLAndRegistryHosting(t *testing.T) {
	s := NewSpec("alt", 5001)
	if s.HostsDir() != "/etc/containerd/certs.d/localhost:5001" {
		t.Errorf("hosts dir %s", s.HostsDir())
	}
	var h struct {
		Host map[string]map[string]any `toml:"host"`
	}
	if _, err := toml.Decode(s.HostsTOML(), &h); err != nil {
		t.Fatalf("hosts.toml: %v\n%s", err, s.HostsTOML())
	}
	if _, ok := h.Host["http://alt-registry:5000"]; !ok || len(h.Host) != 1 {
		t.Errorf("hosts.toml hosts %v, want http://alt-registry:5000 only", h.Host)
	}
	var lrh struct {
		Host string `json:"host"`
		Help string `json:"help"`
	}
	if err := yaml.UnmarshalStrict([]byte(s.RegistryHosting()["localRegistryHosting.v1"]), &lrh); err != nil {
		t.Fatal(err)
	}
	if lrh.Host != "localhost:5001" || lrh.Help == "" {
		t.Errorf("localRegistryHosting.v1 = %+v", lrh)
	}
	if s.Context() != "kind-alt" || (&Provider{spec: s}).ImageRepo() != "localhost:5001" {
		t.Errorf("context %s, image repo %s", s.Context(), s.RegistryHost())
	}
}

func TestEnsureCreates(t *testing.T) {
	w, repo := newWorld(t), t.TempDir()
	p := w.provider(repo, nil)
	kc, err := p.Ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if kc != kubeconfigOf(repo) || p.Kubeconfig() != kc {
		t.Errorf("kubeconfig %s, want %s", kc, kubeconfigOf(repo))
	}
	wantSeq := []string{
		"docker run --detach --restart=always --name alt-registry --publish 127.0.0.1:5001:5000 --label io.alt-platform.kind-cluster=alt " + RegistryImage,
		"Create alt " + kubeconfigOf(repo),
		"docker network connect kind alt-registry",
		"docker exec alt-control-plane sh -c",
		"ApplyConfigMap " + kubeconfigOf(repo) + " kube-public/local-registry-hosting",
	}
	if got := w.mutations(); !prefixes(got, wantSeq) {
		t.Errorf("changes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantSeq, "\n  "))
	}
	if len(w.created) != 1 || w.created[0].Nodes[0].Image != NodeImage {
		t.Errorf("created %+v", w.created)
	}
	node := w.containers["alt-control-plane"]
	if got := node.files["/etc/containerd/certs.d/localhost:5001/hosts.toml"]; got != p.Spec().HostsTOML() {
		t.Errorf("hosts.toml in the node: %q", got)
	}
	if got := w.configMaps["kube-public/local-registry-hosting"]; got["localRegistryHosting.v1"] == "" {
		t.Errorf("local-registry-hosting: %v", got)
	}
}

func TestEnsureReuses(t *testing.T) {
	w, repo := newWorld(t), t.TempDir()
	p := w.provider(repo, nil)
	if _, err := p.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.reset()
	if _, err := p.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := w.mutations()
	// Only the idempotent writes repeat: hosts.toml and the ConfigMap.
	want := []string{"docker exec alt-control-plane sh -c", "ApplyConfigMap "}
	if !prefixes(got, want) {
		t.Errorf("second Ensure changed:\n  %s", strings.Join(got, "\n  "))
	}
	for _, c := range []string{"ExportKubeConfig alt " + kubeconfigOf(repo), "WaitReady " + kubeconfigOf(repo)} {
		if count(w.calls, c) != 1 {
			t.Errorf("want one %q in %q", c, w.calls)
		}
	}
}

func TestEnsureStartsWhatIsStopped(t *testing.T) {
	w, repo := newWorld(t), t.TempDir()
	p := w.provider(repo, nil)
	if _, err := p.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.containers {
		c.running = false // Docker restarted
	}
	w.reset()
	if _, err := p.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"docker start alt-control-plane", "docker start alt-registry"} {
		if count(w.cmds, c) != 1 {
			t.Errorf("want %q in\n  %s", c, strings.Join(w.cmds, "\n  "))
		}
	}
	if count(w.calls, "Create") != 0 || count(w.cmds, "docker run") != 0 {
		t.Errorf("recreated instead of starting: %q %q", w.calls, w.cmds)
	}
}

func TestDrift(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(w *world)
		part   string
		what   string
	}{
		{"node image", func(w *world) { w.containers["alt-control-plane"].image = "kindest/node:v1.33.1" }, "cluster", "node image of alt-control-plane"},
		{"ports", func(w *world) {
			w.containers["alt-control-plane"].ports["30443/tcp"] = [][2]string{{"0.0.0.0", "8443"}}
		}, "cluster", "port mappings of alt-control-plane"},
		{"registry config", func(w *world) {
			w.containers["alt-control-plane"].files["/etc/containerd/config.toml"] = baseContainerdConfig
		}, "cluster", "containerd registry config_path of alt-control-plane"},
		{"nodes", func(w *world) {
			w.containers["alt-worker"] = &fakeContainer{name: "alt-worker", image: NodeImage, running: true,
				labels: map[string]string{"io.x-k8s.kind.role": "worker"}, files: w.containers["alt-control-plane"].files}
			w.clusters["alt"] = append(w.clusters["alt"], "alt-worker")
		}, "cluster", "nodes"},
		{"registry image", func(w *world) { w.containers["alt-registry"].image = "registry:2" }, "registry", "image of alt-registry"},
		{"registry port", func(w *world) {
			w.containers["alt-registry"].ports = map[string][][2]string{"5000/tcp": {{"0.0.0.0", "5000"}}}
		}, "registry", "port of alt-registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, repo := newWorld(t), t.TempDir()
			if _, err := w.provider(repo, nil).Ensure(context.Background()); err != nil {
				t.Fatal(err)
			}
			tt.mutate(w)
			w.reset()
			_, err := w.provider(repo, nil).Ensure(context.Background())
			var de *DriftError
			if !errors.As(err, &de) {
				t.Fatalf("want a DriftError, got %v", err)
			}
			if len(de.Drifts) != 1 || de.Drifts[0].Part != tt.part || de.Drifts[0].What != tt.what {
				t.Errorf("drifts %v, want one %s: %s", de.Drifts, tt.part, tt.what)
			}
			if !strings.Contains(err.Error(), "ALT_KIND_RECREATE=1") || !strings.Contains(err.Error(), "nothing was changed") {
				t.Errorf("error does not say what to do: %v", err)
			}
			if m := w.mutations(); len(m) > 0 {
				t.Errorf("a drifted cluster was changed without ALT_KIND_RECREATE: %q", m)
			}

			// Asked to: only the part that drifted is recreated.
			w.reset()
			if _, err := w.provider(repo, func(o *Options) { o.Recreate = true }).Ensure(context.Background()); err != nil {
				t.Fatal(err)
			}
			clusterRecreated := count(w.calls, "Delete alt") == 1 && count(w.calls, "Create alt") == 1
			registryRecreated := count(w.cmds, "docker rm --force --volumes alt-registry") == 1 && count(w.cmds, "docker run") == 1
			if clusterRecreated != (tt.part == "cluster") || registryRecreated != (tt.part == "registry") {
				t.Errorf("recreated cluster=%v registry=%v for %s drift:\n  %s\n  %s", clusterRecreated, registryRecreated, tt.part,
					strings.Join(w.calls, "\n  "), strings.Join(w.cmds, "\n  "))
			}
			w.reset()
			if _, err := w.provider(repo, nil).Ensure(context.Background()); err != nil {
				t.Errorf("after recreating, still drifted: %v", err)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	t.Run("every problem at once, nothing started", func(t *testing.T) {
		w := newWorld(t)
		var probed []int
		p := w.provider(t.TempDir(), func(o *Options) {
			o.DockerAnswers = func() bool { return false }
			o.LookPath = func(string) (string, error) { return "", errors.New("not found") }
			o.CheckSources = func() error {
				return errors.Join(errors.New("ALT_SRC=/nope: not a folder"), errors.New("skaffold/04-core-services/skaffold.yaml: Dockerfile of alt-backend: /nope/x does not exist"))
			}
			o.PortFree = func(port int) error {
				probed = append(probed, port)
				if port == 80 || port == 5001 {
					return errBusy
				}
				return nil
			}
		})
		err := p.Preflight(context.Background())
		if err == nil {
			t.Fatal("want an error")
		}
		for _, want := range []string{"6 missing prerequisite(s)", "nothing was started", "Docker CLI is not on PATH", "no daemon answers", "ALT_CLUSTER=sim",
			"ALT_SRC=/nope", "Dockerfile of alt-backend", "host port 80 (nginx-external http)", "host port 5001 (the local registry)", "ALT_KIND_REGISTRY_PORT"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
		if strings.Contains(err.Error(), "host port 443") {
			t.Errorf("443 is free: %v", err)
		}
		if len(probed) != 3 {
			t.Errorf("probed ports %v, want 80, 443, 5001", probed)
		}
		if len(w.cmds) > 0 || len(w.calls) > 0 {
			t.Errorf("Docker was asked although it does not answer: %q %q", w.cmds, w.calls)
		}
	})
	t.Run("ports held by this cluster and registry are fine", func(t *testing.T) {
		w, repo := newWorld(t), t.TempDir()
		if _, err := w.provider(repo, nil).Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		w.reset()
		p := w.provider(repo, func(o *Options) { o.PortFree = func(int) error { return errBusy } })
		if err := p.Preflight(context.Background()); err != nil {
			t.Error(err)
		}
		if m := w.mutations(); len(m) > 0 {
			t.Errorf("pre-flight changed something: %q", m)
		}
	})
	t.Run("ports held by someone else", func(t *testing.T) {
		w := newWorld(t)
		w.containers["web"] = &fakeContainer{name: "web", running: true, ports: map[string][][2]string{"80/tcp": {{"0.0.0.0", "80"}}}}
		p := w.provider(t.TempDir(), func(o *Options) {
			o.PortFree = func(port int) error {
				if port == 80 {
					return errBusy
				}
				return nil
			}
		})
		if err := p.Preflight(context.Background()); err == nil || !strings.Contains(err.Error(), "host port 80") {
			t.Errorf("want host port 80 named, got %v", err)
		}
	})
	t.Run("all there", func(t *testing.T) {
		w := newWorld(t)
		called := false
		p := w.provider(t.TempDir(), func(o *Options) { o.CheckSources = func() error { called = true; return nil } })
		if err := p.Preflight(context.Background()); err != nil || !called {
			t.Errorf("err %v, sources checked %v", err, called)
		}
	})
}

func TestPortFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := portFree(port); err == nil {
		t.Errorf("port %d is listened on, portFree says free", port)
	}
	l.Close()
	if err := portFree(port); err != nil {
		t.Errorf("port %d closed, portFree: %v", port, err)
	}
}

func TestCollectLogs(t *testing.T) {
	w, repo := newWorld(t), t.TempDir()
	p := w.provider(repo, nil)
	dir, err := p.CollectLogs("")
	want := filepath.Join(repo, ".cache", "kind", "logs", "20260504-030201.000")
	if err != nil || dir != want {
		t.Fatalf("CollectLogs: %s, %v; want %s", dir, err, want)
	}
	if count(w.calls, "CollectLogs alt "+want) != 1 {
		t.Errorf("calls %q", w.calls)
	}
	if dir, _ := p.CollectLogs("/tmp/x"); dir != "/tmp/x" {
		t.Errorf("explicit dir: %s", dir)
	}
	w.fail["CollectLogs"] = errors.New("no nodes")
	if dir, err := p.CollectLogs(""); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("a failure must name the folder: %s %v", dir, err)
	}
}

func TestDeleteAndReset(t *testing.T) {
	w, repo := newWorld(t), t.TempDir()
	p := w.provider(repo, nil)
	ctx := context.Background()
	if _, err := p.Ensure(ctx); err != nil {
		t.Fatal(err)
	}

	// Reset keeps the registry (and its images) and makes a new cluster.
	w.reset()
	w.containers["alt-registry"].files["/var/lib/registry/image"] = "kept"
	if _, err := p.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if count(w.calls, "Delete alt "+kubeconfigOf(repo)) != 1 || count(w.calls, "Create alt") != 1 {
		t.Errorf("reset calls %q", w.calls)
	}
	if count(w.cmds, "docker rm") != 0 || count(w.cmds, "docker run") != 0 || w.containers["alt-registry"].files["/var/lib/registry/image"] != "kept" {
		t.Errorf("reset did not keep the registry: %q", w.cmds)
	}
	if w.containers["alt-control-plane"].files["/etc/containerd/certs.d/localhost:5001/hosts.toml"] == "" {
		t.Error("reset cluster has no hosts.toml")
	}

	// Delete removes both, and the kubeconfig; again, it has nothing to do.
	w.reset()
	if err := p.Delete(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(w.containers) != 0 || p.Kubeconfig() != "" {
		t.Errorf("left behind: %v, kubeconfig %q", w.containers, p.Kubeconfig())
	}
	w.reset()
	if err := p.Delete(ctx, false); err != nil {
		t.Fatal(err)
	}
	if m := w.mutations(); len(m) > 0 {
		t.Errorf("deleting nothing changed %q", m)
	}
}

func TestFailuresAreNamed(t *testing.T) {
	w, repo := newWorld(t), t.TempDir()
	w.fail["Create"] = errors.New("failed to create cluster: node(s) already exist")
	_, err := w.provider(repo, nil).Ensure(context.Background())
	if err == nil || !strings.Contains(err.Error(), "creating kind cluster alt") {
		t.Errorf("got %v", err)
	}
	w = newWorld(t)
	w.fail["docker network connect"] = errors.New("network kind not found")
	_, err = w.provider(repo, nil).Ensure(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connecting alt-registry to the kind network") {
		t.Errorf("got %v", err)
	}
}

// prefixes reports whether each got line starts with the want line of the
// same index.
func prefixes(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			return false
		}
	}
	return true
}
