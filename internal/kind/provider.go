package kind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/kindimage"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// Runner runs the docker CLI (registry container, network, files in
// nodes). *run.Runner is one; tests record the commands instead.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) error
	Output(ctx context.Context, name string, args ...string) (string, error)
}

// Lib is the part of the kind library (sigs.k8s.io/kind/pkg/cluster) this
// package uses; tests replace it with a fake.
type Lib interface {
	// List names the kind clusters that have node containers.
	List() ([]string, error)
	// Nodes names the node containers of a cluster.
	Nodes(name string) ([]string, error)
	// Create makes the cluster and writes its kubeconfig to that path only.
	Create(name string, cfg *v1alpha4.Cluster, kubeconfig string) error
	// Delete removes the cluster and its context from that kubeconfig.
	Delete(name, kubeconfig string) error
	// ExportKubeConfig writes the cluster's kubeconfig to that path only.
	ExportKubeConfig(name, kubeconfig string) error
	// CollectLogs writes the cluster's logs into dir.
	CollectLogs(name, dir string) error
}

// Kube is what this package does through the cluster's API.
type Kube interface {
	// ApplyConfigMap creates or updates a ConfigMap to hold exactly data.
	ApplyConfigMap(ctx context.Context, kubeconfig, namespace, name string, data map[string]string) error
	// WaitReady waits until the API server answers /readyz.
	WaitReady(ctx context.Context, kubeconfig string, timeout time.Duration) error
}

// Options make a Provider. Repo, Name, RegistryPort and Runner are
// required; the rest default to the real thing.
type Options struct {
	// Repo is the repository root; state lives in <Repo>/.cache/kind.
	Repo         string
	Name         string
	RegistryPort int
	// Ports overrides the published ports (default Ports); tests use free
	// ones.
	Ports []Port
	// Recreate allows deleting and recreating what has drifted.
	Recreate bool
	Runner   Runner
	// CheckSources, when set, is part of Preflight: the engine's check of
	// ALT_SRC and every build context and Dockerfile of the run.
	CheckSources func() error

	Lib           Lib
	Kube          Kube
	DockerAnswers func() bool
	LookPath      func(string) (string, error)
	// PortFree reports whether a host port can be published on 127.0.0.1.
	PortFree func(port int) error
	Now      func() time.Time

	// Offline is ALT_KIND_OFFLINE: "on" uses the images built on this
	// machine (Images), "off" the pinned public ones, "auto" (or "")
	// decides by RegistryAnswers.
	Offline string
	// Images builds or reuses the offline images (kind:image); required
	// when the cluster goes offline.
	Images ImageBuilder
	// RegistryAnswers reports whether the registry of the pinned public
	// images answers.
	RegistryAnswers func(context.Context) bool
	// DaemonCaps reads the Docker daemon's capability bounding set; ok is
	// false when it cannot be read (nothing is then assumed).
	DaemonCaps func() (held, missing []string, ok bool)
	// InstallDockerShim puts a docker program that replaces --privileged
	// first on PATH for the kind library (default: installDockerShim).
	InstallDockerShim func(dir string, held, missing []string) error
}

// ImageBuilder builds or reuses the images of the offline cluster;
// *kindimage.Builder is one.
type ImageBuilder interface {
	Ensure(ctx context.Context) (kindimage.Images, error)
}

// Provider is the kind cluster of this repository and its registry.
type Provider struct {
	spec     Spec
	dir      string
	o        Options
	mu       sync.Mutex // CollectLogs
	prepared bool
	offline  *bool // decided once by Offline
}

// New returns the provider; it touches nothing.
func New(o Options) *Provider {
	if o.Lib == nil {
		o.Lib = newKindLib()
	}
	if o.Kube == nil {
		o.Kube = clientKube{}
	}
	if o.DockerAnswers == nil {
		o.DockerAnswers = config.DockerAnswers
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.PortFree == nil {
		o.PortFree = portFree
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RegistryAnswers == nil {
		o.RegistryAnswers = config.ImageRegistryAnswers
	}
	if o.DaemonCaps == nil {
		o.DaemonCaps = DaemonCaps
	}
	if o.InstallDockerShim == nil {
		o.InstallDockerShim = installDockerShim
	}
	spec := NewSpec(o.Name, o.RegistryPort)
	if o.Ports != nil {
		spec.Ports = o.Ports
	}
	return &Provider{spec: spec, dir: filepath.Join(o.Repo, ".cache", "kind"), o: o}
}

// FromConfig is the provider the settings describe (ALT_KIND_NAME,
// ALT_KIND_REGISTRY_PORT, ALT_KIND_HTTP_PORT, ALT_KIND_HTTPS_PORT,
// ALT_KIND_RECREATE, ALT_KIND_OFFLINE, and ALT_TOOLS_DIR for the offline
// images). checkSources may be nil.
func FromConfig(repo string, cfg *config.Config, r *run.Runner, checkSources func() error) *Provider {
	var ports []Port
	if cfg.KindHTTPPort != 0 && cfg.KindHTTPSPort != 0 {
		ports = PortsOn(cfg.KindHTTPPort, cfg.KindHTTPSPort)
	}
	return New(Options{Repo: repo, Name: cfg.KindName, RegistryPort: cfg.KindRegistryPort, Ports: ports,
		Recreate: cfg.KindRecreate, Runner: r, CheckSources: checkSources, Offline: cfg.KindOffline,
		Images: &kindimage.Builder{Tools: &tools.Cache{Dir: cfg.ToolsDir, Runner: r}, Runner: r}})
}

// prepare decides, once, what this machine needs: which images (the pinned
// public ones, or those built here when no registry answers or
// ALT_KIND_OFFLINE=1, built now if missing), and how to run nodes where the
// Docker daemon cannot grant every capability. It says what it chose.
func (p *Provider) prepare(ctx context.Context) error {
	if p.prepared {
		return nil
	}
	if held, missing, ok := p.o.DaemonCaps(); ok && len(missing) > 0 {
		if err := p.o.InstallDockerShim(filepath.Join(p.dir, "bin"), held, missing); err != nil {
			return fmt.Errorf("kind: the Docker daemon lacks %s; writing the docker shim that replaces --privileged: %w", strings.Join(missing, ", "), err)
		}
		if slices.Contains(missing, "SYS_RESOURCE") {
			p.spec.RestrictOOMScoreAdj = true
		}
	}
	offline := p.Offline(ctx)
	if offline {
		if p.o.Images == nil {
			return errors.New("kind: offline, and no builder for the offline images was given (Options.Images)")
		}
		imgs, err := p.o.Images.Ensure(ctx)
		if err != nil {
			return err
		}
		p.spec.NodeImage, p.spec.RegistryImage, p.spec.Offline = imgs.Node, imgs.Registry, true
	}
	p.prepared = true
	return nil
}

// Offline decides, once, whether the cluster runs on the images built on
// this machine (kind:image) rather than the pinned public ones:
// ALT_KIND_OFFLINE=1, or (unset) no image registry answers. It says so.
func (p *Provider) Offline(ctx context.Context) bool {
	if p.offline != nil {
		return *p.offline
	}
	offline := false
	switch p.o.Offline {
	case "on":
		offline = true
		ui.Warn("kind: ALT_KIND_OFFLINE=1: using the images built on this machine (kind:image), not %s", NodeImage)
	case "off":
	default:
		if !p.o.RegistryAnswers(ctx) {
			offline = true
			ui.Warn("kind: no image registry answers (%s): using the images built on this machine (kind:image) instead of %s; ALT_KIND_OFFLINE=0 insists on the public ones", config.PublicRegistry, NodeImage)
		}
	}
	p.offline = &offline
	return offline
}

// EnsureImages builds the offline images (kind:image) when the cluster goes
// offline and they are missing; nothing when a registry answers. Ensure
// does it too; ci calls it first so that a first run's build is a step of
// its own, its progress in the log.
func (p *Provider) EnsureImages(ctx context.Context) error {
	if !p.Offline(ctx) {
		return nil
	}
	if p.o.Images == nil {
		return errors.New("kind: offline, and no builder for the offline images was given (Options.Images)")
	}
	_, err := p.o.Images.Ensure(ctx)
	return err
}

// Spec is the desired state.
func (p *Provider) Spec() Spec { return p.spec }

// Name is the ALT_CLUSTER kind.
func (p *Provider) Name() string { return config.ClusterKind }

// KubeconfigPath is where the cluster's kubeconfig is written.
func (p *Provider) KubeconfigPath() string { return filepath.Join(p.dir, "kubeconfig") }

// Kubeconfig is KubeconfigPath when it exists, else "".
func (p *Provider) Kubeconfig() string {
	if _, err := os.Stat(p.KubeconfigPath()); err != nil {
		return ""
	}
	return p.KubeconfigPath()
}

// ImageRepo is the repository images are pushed to for this cluster
// (skaffold --default-repo): its local registry.
func (p *Provider) ImageRepo() string { return p.spec.RegistryHost() }

// Ensure creates the cluster and its registry, or reuses them when they
// match the spec, and returns the kubeconfig path. Drift is an error
// (*DriftError) unless Recreate is set.
func (p *Provider) Ensure(ctx context.Context) (string, error) {
	return p.ensure(ctx, p.o.Recreate)
}

func (p *Provider) ensure(ctx context.Context, recreate bool) (string, error) {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return "", fmt.Errorf("kind: %w", err)
	}
	if err := p.prepare(ctx); err != nil {
		return "", err
	}
	s, r := p.spec, p.o.Runner
	reg, err := inspect(ctx, r, s.RegistryName)
	if err != nil {
		return "", err
	}
	exists, err := p.exists()
	if err != nil {
		return "", err
	}
	var drifts []Drift
	if exists {
		nodes, err := p.observe(ctx)
		if err != nil {
			return "", err
		}
		drifts = s.clusterDrift(nodes)
	}
	if reg != nil {
		drifts = append(drifts, s.registryDrift(reg)...)
	}
	if len(drifts) > 0 {
		derr := &DriftError{Name: s.Name, Drifts: drifts}
		if !recreate {
			return "", derr
		}
		for _, d := range drifts {
			ui.Warn("kind: %s: recreating it (ALT_KIND_RECREATE=1)", d)
		}
		if hasPart(drifts, "cluster") {
			if err := p.deleteCluster(); err != nil {
				return "", err
			}
			exists = false
		}
		if hasPart(drifts, "registry") {
			if err := p.removeRegistry(ctx); err != nil {
				return "", err
			}
			reg = nil
		}
	}
	if err := p.ensureRegistry(ctx, reg); err != nil {
		return "", err
	}
	kubeconfig := p.KubeconfigPath()
	if exists {
		step := ui.Start("kind cluster %s: reuse (configuration matches)", s.Name)
		err := p.o.Lib.ExportKubeConfig(s.Name, kubeconfig)
		if err == nil {
			err = p.o.Kube.WaitReady(ctx, kubeconfig, 2*time.Minute)
		}
		if err := step.End(err); err != nil {
			return "", fmt.Errorf("kind cluster %s: %w", s.Name, err)
		}
	} else {
		step := ui.Start("kind cluster %s: create (%s)", s.Name, s.NodeImage)
		if err := step.End(p.o.Lib.Create(s.Name, s.Config(), kubeconfig)); err != nil {
			return "", fmt.Errorf("creating kind cluster %s: %w", s.Name, err)
		}
	}
	step := ui.Start("kind cluster %s: registry %s (%s) on the %s network, hosts.toml in every node", s.Name, s.RegistryHost(), s.RegistryName, Network)
	if err := step.End(p.wireRegistry(ctx, kubeconfig)); err != nil {
		return "", err
	}
	if err := p.writableVolumes(ctx); err != nil {
		return "", err
	}
	return kubeconfig, nil
}

// volumesUnit keeps the node's hostPath volumes writable. kind's default
// StorageClass provisions with the controller manager's in-tree hostpath
// provisioner: each volume is a folder under HostpathDir that containerd
// creates root-owned 0755 when a pod first mounts it, and fsGroup does not
// apply to hostPath volumes, so the charts' non-root pods could not write
// their own volumes (a backup's dump, a Meilisearch dump). The unit makes
// each such folder 1777 within a second of its creation.
const volumesUnit = `[Unit]
Description=alt-platform: hostPath volumes under ` + HostpathDir + ` writable by the pods' own (non-root) users
[Service]
ExecStart=/bin/sh -c 'mkdir -p ` + HostpathDir + `; while :; do chmod 1777 ` + HostpathDir + `/* 2>/dev/null; sleep 1; done'
Restart=always
[Install]
WantedBy=multi-user.target
`

// HostpathDir is where the in-tree hostpath provisioner puts volumes.
const HostpathDir = "/tmp/hostpath_pv"

func (p *Provider) writableVolumes(ctx context.Context) error {
	nodes, err := p.o.Lib.Nodes(p.spec.Name)
	if err != nil {
		return fmt.Errorf("listing the nodes of kind cluster %s: %w", p.spec.Name, err)
	}
	for _, n := range nodes {
		if err := p.o.Runner.Run(ctx, "docker", "exec", n, "sh", "-c",
			`printf '%s' "$1" > /etc/systemd/system/alt-hostpath-pv.service && systemctl daemon-reload && systemctl enable --now alt-hostpath-pv.service`,
			"sh", volumesUnit); err != nil {
			return fmt.Errorf("node %s: the unit keeping hostPath volumes writable: %w", n, err)
		}
	}
	return nil
}

func hasPart(ds []Drift, part string) bool {
	return slices.ContainsFunc(ds, func(d Drift) bool { return d.Part == part })
}

func (p *Provider) exists() (bool, error) {
	names, err := p.o.Lib.List()
	if err != nil {
		return false, fmt.Errorf("listing kind clusters: %w", err)
	}
	return slices.Contains(names, p.spec.Name), nil
}

// observe inspects the cluster's node containers, starting any that are
// stopped (after a Docker restart), and reads containerd's registry
// config_path in each.
func (p *Provider) observe(ctx context.Context) ([]node, error) {
	r := p.o.Runner
	names, err := p.o.Lib.Nodes(p.spec.Name)
	if err != nil {
		return nil, fmt.Errorf("listing the nodes of kind cluster %s: %w", p.spec.Name, err)
	}
	var nodes []node
	var stopped []string
	for _, n := range names {
		c, err := inspect(ctx, r, n)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue
		}
		if !c.State.Running {
			stopped = append(stopped, n)
		}
		nodes = append(nodes, node{container: c})
	}
	if len(stopped) > 0 {
		step := ui.Start("kind cluster %s: start stopped nodes %s", p.spec.Name, strings.Join(stopped, ", "))
		if err := step.End(r.Run(ctx, "docker", append([]string{"start"}, stopped...)...)); err != nil {
			return nil, fmt.Errorf("starting the nodes of kind cluster %s: %w", p.spec.Name, err)
		}
	}
	for i, n := range nodes {
		out, err := r.Output(ctx, "docker", "exec", n.Name, "cat", "/etc/containerd/config.toml")
		if err != nil {
			return nil, fmt.Errorf("reading containerd's config in node %s: %w", n.Name, err)
		}
		if nodes[i].ConfigPath, err = containerdConfigPath(out); err != nil {
			return nil, fmt.Errorf("node %s: /etc/containerd/config.toml: %w", n.Name, err)
		}
	}
	return nodes, nil
}

// ensureRegistry runs the registry container, or starts it when stopped.
func (p *Provider) ensureRegistry(ctx context.Context, reg *container) error {
	s, r := p.spec, p.o.Runner
	switch {
	case reg == nil:
		step := ui.Start("registry %s: run %s on 127.0.0.1:%d", s.RegistryName, s.RegistryImage, s.RegistryPort)
		return step.End(r.Run(ctx, "docker", "run", "--detach", "--restart=always",
			"--name", s.RegistryName,
			"--publish", fmt.Sprintf("127.0.0.1:%d:5000", s.RegistryPort),
			"--label", "io.alt-platform.kind-cluster="+s.Name,
			s.RegistryImage))
	case !reg.State.Running:
		step := ui.Start("registry %s: start (%s)", s.RegistryName, reg.State.Status)
		return step.End(r.Run(ctx, "docker", "start", s.RegistryName))
	}
	ui.Start("registry %s", s.RegistryName).Skip("running, images kept")
	return nil
}

// wireRegistry joins the registry to the kind network, writes hosts.toml
// into every node and announces the registry (KEP-1755). Every step is
// idempotent.
func (p *Provider) wireRegistry(ctx context.Context, kubeconfig string) error {
	s, r := p.spec, p.o.Runner
	reg, err := inspect(ctx, r, s.RegistryName)
	if err != nil {
		return err
	}
	if reg == nil {
		return fmt.Errorf("registry container %s vanished", s.RegistryName)
	}
	if !reg.onNetwork(Network) {
		if err := r.Run(ctx, "docker", "network", "connect", Network, s.RegistryName); err != nil {
			return fmt.Errorf("connecting %s to the %s network: %w", s.RegistryName, Network, err)
		}
	}
	nodes, err := p.o.Lib.Nodes(s.Name)
	if err != nil {
		return fmt.Errorf("listing the nodes of kind cluster %s: %w", s.Name, err)
	}
	for _, n := range nodes {
		// The content and folder are arguments, not shell text.
		if err := r.Run(ctx, "docker", "exec", n, "sh", "-c", `mkdir -p "$1" && printf '%s' "$2" > "$1/hosts.toml"`,
			"sh", s.HostsDir(), s.HostsTOML()); err != nil {
			return fmt.Errorf("writing %s/hosts.toml into node %s: %w", s.HostsDir(), n, err)
		}
	}
	if err := p.o.Kube.ApplyConfigMap(ctx, kubeconfig, "kube-public", "local-registry-hosting", s.RegistryHosting()); err != nil {
		return fmt.Errorf("ConfigMap kube-public/local-registry-hosting: %w", err)
	}
	return nil
}

func (p *Provider) deleteCluster() error {
	step := ui.Start("kind cluster %s: delete", p.spec.Name)
	if err := step.End(p.o.Lib.Delete(p.spec.Name, p.KubeconfigPath())); err != nil {
		return fmt.Errorf("deleting kind cluster %s: %w", p.spec.Name, err)
	}
	if err := os.Remove(p.KubeconfigPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (p *Provider) removeRegistry(ctx context.Context) error {
	step := ui.Start("registry %s: remove (and its images)", p.spec.RegistryName)
	return step.End(p.o.Runner.Run(ctx, "docker", "rm", "--force", "--volumes", p.spec.RegistryName))
}

// Delete removes the cluster (and its kubeconfig) and, unless keepRegistry,
// the registry container with the images pushed to it. What does not exist
// is skipped.
func (p *Provider) Delete(ctx context.Context, keepRegistry bool) error {
	exists, err := p.exists()
	if err != nil {
		return err
	}
	if exists {
		if err := p.deleteCluster(); err != nil {
			return err
		}
	} else {
		ui.Start("kind cluster %s: delete", p.spec.Name).Skip("does not exist")
	}
	if keepRegistry {
		return nil
	}
	reg, err := inspect(ctx, p.o.Runner, p.spec.RegistryName)
	if err != nil {
		return err
	}
	if reg == nil {
		ui.Start("registry %s: remove", p.spec.RegistryName).Skip("does not exist")
		return nil
	}
	return p.removeRegistry(ctx)
}

// Reset deletes the cluster and creates it again, keeping the registry
// container (and the images in it) and Docker's copy of the node image. A
// registry that has drifted is recreated.
func (p *Provider) Reset(ctx context.Context) (string, error) {
	if err := p.Delete(ctx, true); err != nil {
		return "", err
	}
	return p.ensure(ctx, true)
}

// CollectLogs exports the cluster's logs (kind's node logs, journal,
// kubelet, containerd, pods) into dir, or when dir is "" into
// <repo>/.cache/kind/logs/<timestamp>, and returns the folder.
func (p *Provider) CollectLogs(dir string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if dir == "" {
		dir = filepath.Join(p.dir, "logs", p.o.Now().Format("20060102-150405.000"))
	}
	if err := p.o.Lib.CollectLogs(p.spec.Name, dir); err != nil {
		return dir, fmt.Errorf("exporting the logs of kind cluster %s to %s: %w", p.spec.Name, dir, err)
	}
	return dir, nil
}
