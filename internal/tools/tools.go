// Package tools builds the pinned external tools from the Go module proxy
// into a per-version cache and runs them with a controlled environment.
//
// Each tool lives in <dir>/<name>-<version>/<name>, next to a stamp that
// records the size and modification time of the binary that was built. A
// binary whose stamp is missing or does not match (a half-written build, a
// corrupted file) is rebuilt. Tools that come from one module share a
// wrapper module under <dir>/src, so they share downloads and compilation.
package tools

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/flock"

	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/ui"
)

// Tool is one pinned binary and how to build it.
type Tool struct {
	Name    string
	Version string
	// Package is the main package to build.
	Package string
	// Module groups tools built from one wrapper module; it is the wrapper's
	// go.mod without the module line.
	Module *Module
	// LDFlags stamps the version into the binary.
	LDFlags string
	// KindImage marks the tools only the kind path needs (the offline kind
	// images, the BuildKit plugin): built on first use there; tools:install
	// leaves them out.
	KindImage bool
}

// Module is a wrapper module: what it requires and replaces.
type Module struct {
	Name    string // folder under <dir>/src
	Require []string
	Replace []string
}

const kubeVersion = "v1.34.2"

var kubernetes = &Module{
	Name:    "kubernetes-" + kubeVersion,
	Require: []string{"k8s.io/kubernetes " + kubeVersion},
	// k8s.io/kubernetes points its staging modules at ./staging; use their
	// published releases instead.
	Replace: stagingReplaces("v0.34.2",
		"api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime",
		"client-go", "cloud-provider", "cluster-bootstrap", "code-generator", "component-base",
		"component-helpers", "controller-manager", "cri-api", "cri-client", "csi-translation-lib",
		"dynamic-resource-allocation", "endpointslice", "externaljwt", "kms", "kube-aggregator",
		"kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl", "kubelet", "metrics",
		"mount-utils", "pod-security-admission", "sample-apiserver", "sample-cli-plugin", "sample-controller"),
}

// kubernetesNode builds the node binaries (kubelet, kubeadm, kube-proxy) of
// the offline kind image: the same requirements in a wrapper of its own, so
// that its go.mod and go.sum never change under a running build of the
// control plane (the build cache is shared).
var kubernetesNode = &Module{Name: "kubernetes-node-" + kubeVersion, Require: kubernetes.Require, Replace: kubernetes.Replace}

// kubeLDFlags stamps the version; unstamped, the API server reports
// v0.0.0-master+$Format:%H$, which kubectl and Helm cannot parse.
var kubeLDFlags = func() string {
	var f []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		f = append(f, "-X "+pkg+".gitVersion="+kubeVersion, "-X "+pkg+".gitMajor=1", "-X "+pkg+".gitMinor=34", "-X "+pkg+".gitTreeState=clean")
	}
	return strings.Join(f, " ")
}()

// All is every pinned tool.
var All = []Tool{
	{Name: "helm", Version: "v3.22.0", Package: "helm.sh/helm/v3/cmd/helm",
		Module:  &Module{Name: "helm-v3.22.0", Require: []string{"helm.sh/helm/v3 v3.22.0"}},
		LDFlags: "-X helm.sh/helm/v3/internal/version.version=v3.22.0"},
	{Name: "skaffold", Version: "v2.16.1", Package: "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold",
		Module: &Module{Name: "skaffold-v2.16.1", Require: []string{"github.com/GoogleContainerTools/skaffold/v2 v2.16.1"},
			// Skaffold's own replace directives, which go install refuses.
			Replace: []string{
				"github.com/alessio/shellescape => github.com/alessio/shellescape v1.4.2",
				"github.com/imdario/mergo => github.com/imdario/mergo v0.3.16",
				"github.com/docker/docker => github.com/docker/docker v27.5.1+incompatible",
				"github.com/docker/cli => github.com/docker/cli v27.5.1+incompatible",
				"github.com/spf13/viper => github.com/spf13/viper v1.19.0",
				"github.com/buildpacks/lifecycle => github.com/buildpacks/lifecycle v0.20.5",
			}},
		LDFlags: "-X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=v2.16.1"},
	{Name: "kubectl", Version: kubeVersion, Package: "k8s.io/kubernetes/cmd/kubectl", Module: kubernetes, LDFlags: kubeLDFlags},
	{Name: "kube-apiserver", Version: kubeVersion, Package: "k8s.io/kubernetes/cmd/kube-apiserver", Module: kubernetes, LDFlags: kubeLDFlags},
	{Name: "kube-controller-manager", Version: kubeVersion, Package: "k8s.io/kubernetes/cmd/kube-controller-manager", Module: kubernetes, LDFlags: kubeLDFlags},
	{Name: "kube-scheduler", Version: kubeVersion, Package: "k8s.io/kubernetes/cmd/kube-scheduler", Module: kubernetes, LDFlags: kubeLDFlags},
	{Name: "etcd", Version: "v3.6.6", Package: "go.etcd.io/etcd/server/v3",
		// go install refuses etcd's replace directives; a wrapper has none.
		Module: &Module{Name: "etcd-v3.6.6", Require: []string{"go.etcd.io/etcd/server/v3 v3.6.6"}}},
	{Name: "kubelet", Version: kubeVersion, Package: "k8s.io/kubernetes/cmd/kubelet", Module: kubernetesNode, LDFlags: kubeLDFlags, KindImage: true},
	{Name: "kubeadm", Version: kubeVersion, Package: "k8s.io/kubernetes/cmd/kubeadm", Module: kubernetesNode, LDFlags: kubeLDFlags, KindImage: true},
	{Name: "kube-proxy", Version: kubeVersion, Package: "k8s.io/kubernetes/cmd/kube-proxy", Module: kubernetesNode, LDFlags: kubeLDFlags, KindImage: true},
	// crictl: kind load and the node's own tooling need it in the node.
	{Name: "crictl", Version: "v1.34.0", Package: "sigs.k8s.io/cri-tools/cmd/crictl",
		Module:  &Module{Name: "cri-tools-v1.34.0", Require: []string{"sigs.k8s.io/cri-tools v1.34.0"}},
		LDFlags: "-X sigs.k8s.io/cri-tools/pkg/version.Version=v1.34.0", KindImage: true},
	// coredns: the version kubeadm v1.34.2 deploys (kubeadm config images list).
	{Name: "coredns", Version: "v1.12.1", Package: "github.com/coredns/coredns",
		Module:    &Module{Name: "coredns-v1.12.1", Require: []string{"github.com/coredns/coredns v1.12.1"}},
		KindImage: true},
	// docker-buildx: Docker's CLI from 23.0 on refuses DOCKER_BUILDKIT=1
	// without it, and Skaffold's `useBuildkit` builds through the CLI. Built
	// only when no CLI on PATH has buildx or BuildKit built in (engine's
	// buildkitEnv); it goes into a private DOCKER_CONFIG's cli-plugins,
	// never into the user's ~/.docker. v0.11.2 was verified against Docker
	// 20.10.
	{Name: "docker-buildx", Version: "v0.11.2", Package: "github.com/docker/buildx/cmd/buildx",
		Module:  &Module{Name: "buildx-v0.11.2", Require: []string{"github.com/docker/buildx v0.11.2"}},
		LDFlags: "-X github.com/docker/buildx/version.Version=v0.11.2", KindImage: true},
	{Name: "kwok", Version: "v0.7.0", Package: "sigs.k8s.io/kwok/cmd/kwok",
		Module:  &Module{Name: "kwok-v0.7.0", Require: []string{"sigs.k8s.io/kwok v0.7.0"}},
		LDFlags: "-X sigs.k8s.io/kwok/pkg/consts.Version=v0.7.0"},
	{Name: "kube-score", Version: "v1.20.0", Package: "github.com/zegl/kube-score/cmd/kube-score",
		Module:  &Module{Name: "kube-score-v1.20.0", Require: []string{"github.com/zegl/kube-score v1.20.0"}},
		LDFlags: "-X main.version=v1.20.0"},
	// actionlint: the GitHub workflows in ci's static stage.
	{Name: "actionlint", Version: "v1.7.12", Package: "github.com/rhysd/actionlint/cmd/actionlint",
		Module:  &Module{Name: "actionlint-v1.7.12", Require: []string{"github.com/rhysd/actionlint v1.7.12"}},
		LDFlags: "-X github.com/rhysd/actionlint.version=v1.7.12"},
}

// Deploy are the tools every deploy needs.
var Deploy = []string{"helm", "skaffold", "kubectl"}

// Static are the tools of ci's static stage (with Shellcheck, Debian's).
var Static = []string{"helm", "skaffold", "kube-score", "actionlint"}

// Debian is a tool taken from Debian's package at a pinned version rather
// than built: installed with apt-get when its binary is not on PATH (a
// binary already there is used as it is).
type Debian struct {
	Bin     string // the binary
	Package string // name=version, as apt-get install takes it
}

// Shellcheck lints scripts/ in ci's static stage (Debian bookworm's).
var Shellcheck = Debian{Bin: "shellcheck", Package: "shellcheck=0.9.0-1"}

// Ensure returns the path of the binary, installing the package first when
// the binary is not on PATH.
func (d Debian) Ensure(ctx context.Context, r *run.Runner) (string, error) {
	if p, err := exec.LookPath(d.Bin); err == nil {
		return p, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("%s is not installed and there is no apt-get to install it (Debian's %s); install %s", d.Bin, d.Package, d.Bin)
	}
	ar := *r
	ar.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := ar.Run(ctx, "apt-get", "update"); err != nil {
		return "", err
	}
	if err := ar.Run(ctx, "apt-get", "install", "--yes", "--no-install-recommends", d.Package); err != nil {
		return "", fmt.Errorf("installing Debian's %s for %s: %w", d.Package, d.Bin, err)
	}
	return exec.LookPath(d.Bin)
}

// KindImage are the tools the offline kind images are made of
// (internal/kindimage): the node's binaries and the control plane's.
var KindImage = []string{"kubelet", "kubeadm", "kube-proxy", "kubectl", "crictl",
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "coredns"}

// Sim are the tools of the simulated cluster.
var Sim = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl"}

func stagingReplaces(version string, names ...string) []string {
	r := make([]string, len(names))
	for i, n := range names {
		r[i] = fmt.Sprintf("k8s.io/%s => k8s.io/%s %s", n, n, version)
	}
	return r
}

// Lookup returns the pinned tool of that name.
func Lookup(name string) (Tool, error) {
	for _, t := range All {
		if t.Name == name {
			return t, nil
		}
	}
	names := make([]string, len(All))
	for i, t := range All {
		names[i] = t.Name
	}
	return Tool{}, fmt.Errorf("unknown tool %q; pinned tools: %s", name, strings.Join(names, ", "))
}

// Cache is the tools cache at Dir.
type Cache struct {
	Dir    string
	Runner *run.Runner // runs `go`; its Env is used for builds
}

// Path is where the tool's binary lives (built or not).
func (c *Cache) Path(t Tool) string {
	return filepath.Join(c.Dir, t.Name+"-"+t.Version, t.Name)
}

func stampOf(bin string) string { return bin + ".stamp" }

// Installed reports whether the tool's binary is present and intact: its
// size and modification time match the stamp written when it was built.
func (c *Cache) Installed(t Tool) bool {
	bin := c.Path(t)
	fi, err := os.Stat(bin)
	if err != nil {
		return false
	}
	stamp, err := os.ReadFile(stampOf(bin))
	return err == nil && string(stamp) == stampLine(t, fi)
}

func stampLine(t Tool, fi os.FileInfo) string {
	return fmt.Sprintf("%s %s size=%d mtime=%d\n", t.Name, t.Version, fi.Size(), fi.ModTime().UnixNano())
}

// Ensure builds every named tool that is missing or damaged and returns
// their paths by name. Present tools cost a stat each.
func (c *Cache) Ensure(ctx context.Context, names ...string) (map[string]string, error) {
	paths := map[string]string{}
	var missing []Tool
	for _, n := range names {
		t, err := Lookup(n)
		if err != nil {
			return nil, err
		}
		paths[n] = c.Path(t)
		if !c.Installed(t) {
			missing = append(missing, t)
		}
	}
	for i, t := range missing {
		step := ui.Start("build %s %s (tool %d of %d missing)", t.Name, t.Version, i+1, len(missing))
		stop := step.Tick(ProgressEvery)
		err := c.build(ctx, t)
		stop()
		if err := step.End(err); err != nil {
			return nil, fmt.Errorf("tools: build %s %s into %s: %w", t.Name, t.Version, c.Path(t), err)
		}
	}
	return paths, nil
}

// ProgressEvery is how often a tool build says it is still going.
var ProgressEvery = 10 * time.Second

// build compiles one tool in its wrapper module, under a lock so that two
// runs never write the same binary.
func (c *Cache) build(ctx context.Context, t Tool) error {
	bin := c.Path(t)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	unlock, err := flock.Lock(ctx, filepath.Join(filepath.Dir(bin), ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if c.Installed(t) { // built by another run while we waited
		return nil
	}
	src := filepath.Join(c.Dir, "src", t.Module.Name)
	if err := writeWrapper(src, t.Module, t.Package); err != nil {
		return err
	}
	r := *c.Runner
	r.Dir = src
	r.Env = append(slices.Clone(orEnviron(r.Env)), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	if _, err := os.Stat(filepath.Join(src, "go.sum")); err != nil {
		if err := r.Run(ctx, "go", "mod", "tidy"); err != nil {
			return err
		}
	}
	tmp := bin + ".tmp"
	os.Remove(stampOf(bin))
	if err := r.Run(ctx, "go", "build", "-trimpath", "-ldflags", strings.TrimSpace("-s -w "+t.LDFlags), "-o", tmp, t.Package); err != nil {
		return err
	}
	if err := os.Rename(tmp, bin); err != nil {
		return err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return err
	}
	return os.WriteFile(stampOf(bin), []byte(stampLine(t, fi)), 0o644)
}

func orEnviron(env []string) []string {
	if env == nil {
		return os.Environ()
	}
	return env
}

// writeWrapper writes the wrapper module's go.mod and a file importing the
// packages to build, so that `go mod tidy` keeps their requirements.
func writeWrapper(dir string, m *Module, pkg string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "module alt-platform/tools/%s\n\ngo 1.26\n\nrequire (\n", m.Name)
	for _, r := range m.Require {
		fmt.Fprintf(&b, "\t%s\n", r)
	}
	b.WriteString(")\n")
	if len(m.Replace) > 0 {
		b.WriteString("\nreplace (\n")
		for _, r := range m.Replace {
			fmt.Fprintf(&b, "\t%s\n", r)
		}
		b.WriteString(")\n")
	}
	gomod := filepath.Join(dir, "go.mod")
	if old, err := os.ReadFile(gomod); err != nil || !sameRequirements(string(old), b.String()) {
		os.Remove(filepath.Join(dir, "go.sum"))
		if err := os.WriteFile(gomod, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	var pkgs []string
	for _, t := range All {
		if t.Module == m {
			pkgs = append(pkgs, fmt.Sprintf("\t_ %q\n", t.Package))
		}
	}
	imports := "//go:build tools\n\npackage tools\n\nimport (\n" + strings.Join(pkgs, "") + ")\n"
	return os.WriteFile(filepath.Join(dir, "tools.go"), []byte(imports), 0o644)
}

// sameRequirements reports whether a go.mod that `go mod tidy` rewrote still
// holds every line we wrote (tidy adds indirect requirements).
func sameRequirements(have, want string) bool {
	for _, l := range strings.Split(want, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "(" || l == ")" || l == "require (" || l == "replace (" {
			continue
		}
		if !strings.Contains(have, l) {
			return false
		}
	}
	return true
}

// Env is the controlled environment tools run in: the pinned tools first on
// PATH, the given kubeconfig, Helm's state inside the cache, no prompts, no
// update checks, no telemetry. The caller's cloud credentials pass through
// (cloudPrefixes): a kubeconfig's exec plugin (aws, gke-gcloud-auth-plugin,
// kubelogin) runs inside helm, kubectl and skaffold and reads them there.
func (c *Cache) Env(kubeconfig string, extra ...string) []string {
	var dirs []string
	for _, t := range All {
		dirs = append(dirs, filepath.Dir(c.Path(t)))
	}
	keep := []string{"HOME", "USER", "TMPDIR", "LANG", "TERM", "NO_COLOR", "DOCKER_HOST", "DOCKER_CONFIG",
		"GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY", "GOFLAGS", "GONOSUMDB", "GOPRIVATE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
		"SSL_CERT_FILE", "SSL_CERT_DIR"}
	var env []string
	for _, k := range keep {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, kv := range os.Environ() {
		for _, p := range cloudPrefixes {
			if strings.HasPrefix(kv, p) {
				env = append(env, kv)
				break
			}
		}
	}
	helm := filepath.Join(c.Dir, "helm-home")
	env = append(env,
		"PATH="+strings.Join(dirs, string(os.PathListSeparator))+string(os.PathListSeparator)+os.Getenv("PATH"),
		"KUBECONFIG="+kubeconfig,
		"HELM_CACHE_HOME="+filepath.Join(helm, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helm, "config"),
		"HELM_DATA_HOME="+filepath.Join(helm, "data"),
		"SKAFFOLD_UPDATE_CHECK=false",
		"SKAFFOLD_INTERACTIVE=false",
		"SKAFFOLD_CONFIG="+c.skaffoldConfig(),
	)
	return append(env, extra...)
}

// cloudPrefixes start the variables of the clouds' CLIs and credential
// plugins: AWS (EKS), Google Cloud (GKE), Azure (AKS, kubelogin).
var cloudPrefixes = []string{"AWS_", "GOOGLE_", "CLOUDSDK_", "USE_GKE_GCLOUD_AUTH_PLUGIN=", "AZURE_", "AAD_", "KUBELOGIN_"}

// skaffoldConfig writes (once) a global Skaffold config with metrics, the
// survey prompt and update checks off, and returns its path.
func (c *Cache) skaffoldConfig() string {
	p := filepath.Join(c.Dir, "skaffold-config.yaml")
	const body = "global:\n  collect-metrics: false\n  update-check: false\n  survey:\n    disable-prompt: true\n"
	if b, err := os.ReadFile(p); err != nil || string(b) != body {
		os.MkdirAll(c.Dir, 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	return p
}
