package kindimage

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
)

func TestMain(m *testing.M) {
	ui.SetOutput(discard{})
	os.Exit(m.Run())
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// kubeadmList is what `kubeadm config images list --kubernetes-version
// v1.34.2` printed (kubeadm v1.34.2 built by the tools cache).
const kubeadmList = `registry.k8s.io/kube-apiserver:v1.34.2
registry.k8s.io/kube-controller-manager:v1.34.2
registry.k8s.io/kube-scheduler:v1.34.2
registry.k8s.io/kube-proxy:v1.34.2
registry.k8s.io/coredns/coredns:v1.12.1
registry.k8s.io/pause:3.10.1
registry.k8s.io/etcd:3.6.5-0
`

func TestImageList(t *testing.T) {
	refs, err := parseImageList(kubeadmList)
	if err != nil {
		t.Fatal(err)
	}
	if refs["coredns"] != "registry.k8s.io/coredns/coredns:v1.12.1" || refs["etcd"] != "registry.k8s.io/etcd:3.6.5-0" {
		t.Errorf("refs: %v", refs)
	}
	// The CoreDNS built is the one kubeadm deploys.
	cd, _ := tools.Lookup("coredns")
	if !strings.HasSuffix(refs["coredns"], ":"+cd.Version) {
		t.Errorf("kubeadm deploys %s, the tools cache builds coredns %s", refs["coredns"], cd.Version)
	}
	_, err = parseImageList(strings.Replace(kubeadmList, "registry.k8s.io/pause:3.10.1\n", "", 1))
	if err == nil || !strings.Contains(err.Error(), "pause") {
		t.Errorf("a missing image must be named: %v", err)
	}
}

func TestComponents(t *testing.T) {
	refs, _ := parseImageList(kubeadmList)
	cs := components(refs)
	seen := map[string]bool{}
	for _, c := range cs {
		seen[c.Name] = true
		if c.Ref == "" || c.Tags[0] != c.Ref {
			t.Errorf("%s: ref %q, tags %q", c.Name, c.Ref, c.Tags)
		}
		if strings.Contains(c.Dockerfile, "# syntax") {
			t.Errorf("%s: a # syntax line would make BuildKit fetch a frontend", c.Name)
		}
		from := strings.SplitN(c.Dockerfile, "\n", 2)[0]
		want := "FROM scratch"
		if c.Name == "kube-proxy" {
			want = "FROM " + rootfsImage // iptables
		}
		if from != want {
			t.Errorf("%s: %q, want %q", c.Name, from, want)
		}
		if _, err := tools.Lookup(c.Binary); err != nil && c.Binary != "pause" {
			t.Errorf("%s: binary %s is not a pinned tool", c.Name, c.Binary)
		}
	}
	if len(seen) != len(refs) {
		t.Errorf("components %v, kubeadm runs %v", seen, refs)
	}
	// kind's containerd config asks for pause:3.10 as the sandbox image.
	for _, c := range cs {
		if c.Name == "pause" && (len(c.Tags) != 2 || c.Tags[1] != "registry.k8s.io/pause:3.10") {
			t.Errorf("pause tags %q", c.Tags)
		}
	}
}

func TestPins(t *testing.T) {
	for _, img := range []string{NodeImage, RegistryImage, nodeBaseImage} {
		if !strings.HasPrefix(img, "alt-platform.invalid/") || !strings.Contains(img, "-r"+Revision) {
			t.Errorf("%s: want alt-platform.invalid/…-r%s (a name no registry answers for)", img, Revision)
		}
	}
	for _, want := range append([]string{KubeVersion, KindModule, RegistryPackage, Suite}, RootfsPackages...) {
		if !strings.Contains(Recipe, want) {
			t.Errorf("Recipe lacks %q: %s", want, Recipe)
		}
	}
	// kind's base files come from the kind release go.mod requires.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gomod), strings.Replace(KindModule, "@", " ", 1)) {
		t.Errorf("go.mod does not require %s", KindModule)
	}
	if !strings.HasSuffix(rootfsImage, "-r"+RootfsRevision) || !strings.Contains(rootfsRecipe, strings.Join(RootfsPackages, ",")) {
		t.Errorf("rootfs %s, recipe %s", rootfsImage, rootfsRecipe)
	}
	if !strings.Contains(Recipe, "kubernetes "+KubeVersion) {
		t.Error("Recipe lacks the Kubernetes version")
	}
	k, _ := tools.Lookup("kubelet")
	if k.Version != KubeVersion {
		t.Errorf("kubelet %s, node image %s", k.Version, KubeVersion)
	}
}

func TestRefusesSyntaxLine(t *testing.T) {
	b := &Builder{}
	err := b.dockerBuild(context.Background(), t.TempDir(), "# syntax=docker/dockerfile:1\nFROM scratch\n", []string{"x"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "syntax") {
		t.Errorf("want a refusal, got %v", err)
	}
}

func TestEmbeddedFiles(t *testing.T) {
	if !strings.HasPrefix(altEntrypoint, "#!/bin/sh\n") || !strings.Contains(altEntrypoint, "exec /usr/local/bin/entrypoint \"$@\"") {
		t.Errorf("alt-entrypoint must end in kind's entrypoint:\n%s", altEntrypoint)
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command(sh, "-n", "-c", altEntrypoint).CombinedOutput(); err != nil {
			t.Errorf("alt-entrypoint: %v\n%s", err, out)
		}
	}
	var conf struct {
		Plugins []struct {
			Type string
			IPAM struct {
				Ranges [][]struct{ Subnet string }
			}
		}
	}
	if err := json.Unmarshal([]byte(bridgeConflist), &conf); err != nil {
		t.Fatalf("10-bridge.conflist: %v", err)
	}
	// kind's default podSubnet is 10.244.0.0/16; the single node gets /24.
	if len(conf.Plugins) == 0 || conf.Plugins[0].Type != "bridge" || conf.Plugins[0].IPAM.Ranges[0][0].Subnet != "10.244.0.0/24" {
		t.Errorf("10-bridge.conflist: %+v", conf)
	}
	if !strings.Contains(registryConfig, "addr: :5000") {
		t.Errorf("the registry must listen on 5000 (internal/kind's hosts.toml):\n%s", registryConfig)
	}
}

// TestPause builds the pause program and checks it holds until SIGTERM and
// then exits 0.
func TestPause(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	b := &Builder{Runner: &run.Runner{}}
	bin, err := b.buildPause(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("pause exited on its own: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pause on SIGTERM: %v", err)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Error("pause ignored SIGTERM")
	}
	if out, err := exec.Command("file", bin).Output(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Errorf("pause must be static (FROM scratch): %s", out)
	}
}
