package kind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// baseContainerdConfig is the start of the node image's
// /etc/containerd/config.toml (kind v0.33.0 images/base/files).
const baseContainerdConfig = `version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
`

// fakeContainer is a container of the fake Docker.
type fakeContainer struct {
	name, image string
	running     bool
	labels      map[string]string
	ports       map[string][][2]string // "30080/tcp" → {hostIP, hostPort}
	networks    []string
	files       map[string]string
}

// world is a fake Docker daemon behind the docker CLI (Runner) and the kind
// library (Lib) at once, so what one changes the other sees. Every call is
// recorded.
type world struct {
	t          *testing.T
	containers map[string]*fakeContainer
	clusters   map[string][]string // cluster → node container names
	cmds       []string            // docker command lines
	calls      []string            // kind library and Kube calls
	log        []string            // both, in order
	fail       map[string]error    // command or call prefix → error
	created    []*v1alpha4.Cluster
	configMaps map[string]map[string]string
}

func newWorld(t *testing.T) *world {
	return &world{t: t, containers: map[string]*fakeContainer{}, clusters: map[string][]string{},
		fail: map[string]error{}, configMaps: map[string]map[string]string{}}
}

func (w *world) failure(line string) error {
	for prefix, err := range w.fail {
		if strings.HasPrefix(line, prefix) {
			return err
		}
	}
	return nil
}

func (w *world) Run(ctx context.Context, name string, args ...string) error {
	_, err := w.Output(ctx, name, args...)
	return err
}

func (w *world) Output(_ context.Context, name string, args ...string) (string, error) {
	line := name + " " + strings.Join(args, " ")
	w.cmds = append(w.cmds, line)
	w.log = append(w.log, line)
	if err := w.failure(line); err != nil {
		return "", err
	}
	if name != "docker" || len(args) == 0 {
		return "", fmt.Errorf("unexpected command %s", line)
	}
	get := func(n string) (*fakeContainer, error) {
		c, ok := w.containers[n]
		if !ok {
			return nil, fmt.Errorf("Error response from daemon: No such container: %s", n)
		}
		return c, nil
	}
	switch {
	case len(args) == 3 && args[0] == "container" && args[1] == "inspect":
		c, err := get(args[2])
		if err != nil {
			return "", err
		}
		return c.inspectJSON(), nil
	case args[0] == "run":
		c := &fakeContainer{running: true, ports: map[string][][2]string{}, networks: []string{"bridge"}, files: map[string]string{}}
		for i := 1; i < len(args); i++ {
			switch args[i] {
			case "--name":
				i++
				c.name = args[i]
			case "--publish":
				i++
				parts := strings.Split(args[i], ":") // ip:host:container
				c.ports[parts[2]+"/tcp"] = append(c.ports[parts[2]+"/tcp"], [2]string{parts[0], parts[1]})
			case "--label":
				i++
			default:
				if !strings.HasPrefix(args[i], "--") {
					c.image = args[i]
				}
			}
		}
		if _, dup := w.containers[c.name]; dup {
			return "", fmt.Errorf("Conflict. The container name %q is already in use", c.name)
		}
		w.containers[c.name] = c
		return "id\n", nil
	case args[0] == "start":
		for _, n := range args[1:] {
			c, err := get(n)
			if err != nil {
				return "", err
			}
			c.running = true
		}
		return "", nil
	case args[0] == "rm":
		n := args[len(args)-1]
		if _, err := get(n); err != nil {
			return "", err
		}
		delete(w.containers, n)
		return "", nil
	case len(args) == 4 && args[0] == "network" && args[1] == "connect":
		c, err := get(args[3])
		if err != nil {
			return "", err
		}
		if slices.Contains(c.networks, args[2]) {
			return "", fmt.Errorf("endpoint with name %s already exists in network %s", args[3], args[2])
		}
		c.networks = append(c.networks, args[2])
		return "", nil
	case args[0] == "exec":
		c, err := get(args[1])
		if err != nil {
			return "", err
		}
		if !c.running {
			return "", fmt.Errorf("container %s is not running", c.name)
		}
		rest := args[2:]
		switch {
		case len(rest) == 2 && rest[0] == "cat":
			f, ok := c.files[rest[1]]
			if !ok {
				return "", fmt.Errorf("cat: %s: No such file or directory", rest[1])
			}
			return f, nil
		case len(rest) == 6 && rest[0] == "sh" && rest[1] == "-c" && strings.Contains(rest[2], `"$1/hosts.toml"`):
			c.files[rest[4]+"/hosts.toml"] = rest[5]
			return "", nil
		case len(rest) == 5 && rest[0] == "sh" && rest[1] == "-c" && strings.Contains(rest[2], "alt-hostpath-pv.service"):
			c.files["/etc/systemd/system/alt-hostpath-pv.service"] = rest[4]
			return "", nil
		}
	}
	return "", fmt.Errorf("fake docker does not know %s", line)
}

func (c *fakeContainer) inspectJSON() string {
	type binding struct{ HostIp, HostPort string }
	pb := map[string][]binding{}
	for port, bs := range c.ports {
		for _, b := range bs {
			pb[port] = append(pb[port], binding{b[0], b[1]})
		}
	}
	nets := map[string]any{}
	for _, n := range c.networks {
		nets[n] = map[string]any{"NetworkID": n}
	}
	status := "exited"
	if c.running {
		status = "running"
	}
	v := []map[string]any{{
		"Name":            "/" + c.name,
		"Config":          map[string]any{"Image": c.image, "Labels": c.labels},
		"State":           map[string]any{"Running": c.running, "Status": status},
		"HostConfig":      map[string]any{"PortBindings": pb},
		"NetworkSettings": map[string]any{"Networks": nets},
	}}
	b, _ := json.Marshal(v)
	return string(b)
}

// Lib

func (w *world) call(format string, a ...any) error {
	line := fmt.Sprintf(format, a...)
	w.calls = append(w.calls, line)
	w.log = append(w.log, line)
	return w.failure(line)
}

func (w *world) List() ([]string, error) {
	if err := w.call("List"); err != nil {
		return nil, err
	}
	var names []string
	for n := range w.clusters {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (w *world) Nodes(name string) ([]string, error) {
	if err := w.call("Nodes %s", name); err != nil {
		return nil, err
	}
	return w.clusters[name], nil
}

// Create makes node containers as kind's Docker provider would: the
// configured image, port mappings plus the API server's, the cluster's
// containerd patches applied to the base config, on the kind network.
func (w *world) Create(name string, cfg *v1alpha4.Cluster, kubeconfig string) error {
	if err := w.call("Create %s %s", name, kubeconfig); err != nil {
		return err
	}
	if _, ok := w.clusters[name]; ok {
		return fmt.Errorf("node(s) already exist for a cluster with the name %q", name)
	}
	w.created = append(w.created, cfg)
	for i, n := range cfg.Nodes {
		cname := fmt.Sprintf("%s-%s", name, n.Role)
		if i > 0 {
			cname += fmt.Sprint(i + 1)
		}
		c := &fakeContainer{name: cname, image: n.Image, running: true,
			labels:   map[string]string{"io.x-k8s.kind.cluster": name, "io.x-k8s.kind.role": string(n.Role)},
			ports:    map[string][][2]string{},
			networks: []string{"kind"},
			files:    map[string]string{"/etc/containerd/config.toml": baseContainerdConfig + "\n" + strings.Join(cfg.ContainerdConfigPatches, "\n")},
		}
		if n.Role == v1alpha4.ControlPlaneRole {
			c.ports["6443/tcp"] = [][2]string{{"127.0.0.1", "39127"}}
		}
		for _, pm := range n.ExtraPortMappings {
			key := fmt.Sprintf("%d/%s", pm.ContainerPort, strings.ToLower(string(pm.Protocol)))
			c.ports[key] = append(c.ports[key], [2]string{pm.ListenAddress, fmt.Sprint(pm.HostPort)})
		}
		w.containers[cname] = c
		w.clusters[name] = append(w.clusters[name], cname)
	}
	return os.WriteFile(kubeconfig, []byte("current-context: kind-"+name+"\n"), 0o600)
}

func (w *world) Delete(name, kubeconfig string) error {
	if err := w.call("Delete %s %s", name, kubeconfig); err != nil {
		return err
	}
	for _, n := range w.clusters[name] {
		delete(w.containers, n)
	}
	delete(w.clusters, name)
	return nil
}

func (w *world) ExportKubeConfig(name, kubeconfig string) error {
	if err := w.call("ExportKubeConfig %s %s", name, kubeconfig); err != nil {
		return err
	}
	if _, ok := w.clusters[name]; !ok {
		return fmt.Errorf("could not locate any control plane nodes for cluster named %q", name)
	}
	return os.WriteFile(kubeconfig, []byte("current-context: kind-"+name+"\n"), 0o600)
}

func (w *world) CollectLogs(name, dir string) error {
	if err := w.call("CollectLogs %s %s", name, dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// Kube

func (w *world) ApplyConfigMap(_ context.Context, kubeconfig, ns, name string, data map[string]string) error {
	if err := w.call("ApplyConfigMap %s %s/%s", kubeconfig, ns, name); err != nil {
		return err
	}
	w.configMaps[ns+"/"+name] = data
	return nil
}

func (w *world) WaitReady(_ context.Context, kubeconfig string, _ time.Duration) error {
	return w.call("WaitReady %s", kubeconfig)
}

// provider is a Provider on the fake world: Docker answers, the docker CLI
// is found and every port is free unless busy says otherwise.
func (w *world) provider(repo string, mod func(*Options)) *Provider {
	o := Options{Repo: repo, Name: "alt", RegistryPort: 5001, Runner: w, Lib: w, Kube: w,
		DockerAnswers: func() bool { return true },
		LookPath:      func(string) (string, error) { return "/usr/bin/docker", nil },
		PortFree:      func(int) error { return nil },
		Now:           func() time.Time { return time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC) },
		// A registry answers and the daemon grants every capability,
		// unless a test says otherwise.
		RegistryAnswers: func(context.Context) bool { return true },
		DaemonCaps:      func() ([]string, []string, bool) { return nil, nil, false },
	}
	if mod != nil {
		mod(&o)
	}
	return New(o)
}

// mutating says whether a recorded command or call changes anything.
func mutating(line string) bool {
	for _, p := range []string{"docker run", "docker start", "docker rm", "docker network connect", "Create ", "Delete ", "ApplyConfigMap "} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return strings.HasPrefix(line, "docker exec") && strings.Contains(line, "hosts.toml")
}

func (w *world) mutations() []string {
	var out []string
	for _, l := range w.log {
		if mutating(l) {
			out = append(out, l)
		}
	}
	return out
}

func (w *world) reset() { w.cmds, w.calls, w.log = nil, nil, nil }

func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

var errBusy = errors.New("in use")

func kubeconfigOf(repo string) string { return filepath.Join(repo, ".cache", "kind", "kubeconfig") }
