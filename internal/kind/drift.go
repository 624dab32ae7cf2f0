package kind

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Drift is one difference between Spec and what exists.
type Drift struct {
	// Part is "cluster" (fixed when the cluster is made: recreating it is
	// the only fix) or "registry" (the registry container).
	Part            string
	What, Want, Got string
}

func (d Drift) String() string {
	return fmt.Sprintf("%s: %s is %s, want %s", d.Part, d.What, d.Got, d.Want)
}

// DriftError is an existing cluster or registry that does not match Spec.
type DriftError struct {
	Name   string
	Drifts []Drift
}

func (e *DriftError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kind cluster %q has drifted from its configuration (internal/kind.Spec):", e.Name)
	for _, d := range e.Drifts {
		b.WriteString("\n  " + d.String())
	}
	b.WriteString("\n  to delete and recreate what drifted, set ALT_KIND_RECREATE=1 (or run go run mage.go kind:reset); nothing was changed")
	return b.String()
}

// container is the part of `docker container inspect` this package reads.
type container struct {
	Name   string
	Config struct {
		Image  string
		Labels map[string]string
	}
	State struct {
		Running bool
		Status  string
	}
	HostConfig struct {
		PortBindings map[string][]struct {
			HostIp   string
			HostPort string
		}
	}
	NetworkSettings struct {
		Networks map[string]json.RawMessage
	}
}

// role is kind's node role label of a node container.
func (c *container) role() string { return c.Config.Labels["io.x-k8s.kind.role"] }

// bindings lists the published ports as "hostIP:hostPort->port/proto",
// sorted, leaving out the container ports in skip.
func (c *container) bindings(skip ...string) []string {
	var out []string
	for port, bs := range c.HostConfig.PortBindings {
		port = strings.ToLower(port)
		if slices.Contains(skip, port) {
			continue
		}
		for _, b := range bs {
			ip := b.HostIp
			if ip == "" {
				ip = "0.0.0.0"
			}
			out = append(out, ip+":"+b.HostPort+"->"+port)
		}
	}
	slices.Sort(out)
	return out
}

func (c *container) onNetwork(name string) bool {
	_, ok := c.NetworkSettings.Networks[name]
	return ok
}

// hostPorts are the host ports a container publishes.
func (c *container) hostPorts() []int {
	var out []int
	for _, bs := range c.HostConfig.PortBindings {
		for _, b := range bs {
			if p, err := strconv.Atoi(b.HostPort); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// inspect returns the container of that name, nil when there is none.
func inspect(ctx context.Context, r Runner, name string) (*container, error) {
	out, err := r.Output(ctx, "docker", "container", "inspect", name)
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "no such") {
			return nil, nil
		}
		return nil, fmt.Errorf("inspecting container %s: %w", name, err)
	}
	var cs []container
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		return nil, fmt.Errorf("docker container inspect %s: %w", name, err)
	}
	if len(cs) == 0 {
		return nil, nil
	}
	c := cs[0]
	c.Name = strings.TrimPrefix(c.Name, "/")
	if c.Name == "" {
		c.Name = name
	}
	return &c, nil
}

// node is one node container of the cluster and containerd's registry
// config_path in it.
type node struct {
	*container
	ConfigPath string
}

// containerdConfigPath reads containerd's registry config_path from a
// node's config.toml: version 2 (plugins."io.containerd.grpc.v1.cri"
// .registry) or version 3 (plugins."io.containerd.cri.v1.images".registry).
func containerdConfigPath(configTOML string) (string, error) {
	var c struct {
		Plugins map[string]struct {
			Registry struct {
				ConfigPath string `toml:"config_path"`
			} `toml:"registry"`
		} `toml:"plugins"`
	}
	if _, err := toml.Decode(configTOML, &c); err != nil {
		return "", err
	}
	for _, p := range []string{"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images"} {
		if v := c.Plugins[p].Registry.ConfigPath; v != "" {
			return v, nil
		}
	}
	return "", nil
}

// clusterDrift compares the nodes of an existing cluster with the spec.
func (s Spec) clusterDrift(nodes []node) []Drift {
	var d []Drift
	var roles []string
	for _, n := range nodes {
		roles = append(roles, n.role())
	}
	if len(nodes) != 1 || roles[0] != "control-plane" {
		d = append(d, Drift{Part: "cluster", What: "nodes", Want: "one control-plane", Got: strings.Join(roles, ", ")})
	}
	var want []string
	for _, p := range s.Ports {
		want = append(want, fmt.Sprintf("%s:%d->%d/tcp", s.ListenAddress, p.Host, p.Node))
	}
	slices.Sort(want)
	for _, n := range nodes {
		if n.Config.Image != s.NodeImage {
			d = append(d, Drift{Part: "cluster", What: "node image of " + n.Name, Want: s.NodeImage, Got: n.Config.Image})
		}
		if n.role() == "control-plane" {
			// 6443 is the API server, published by kind on a random port.
			if got := n.bindings("6443/tcp"); !slices.Equal(got, want) {
				d = append(d, Drift{Part: "cluster", What: "port mappings of " + n.Name, Want: orNone(want), Got: orNone(got)})
			}
		}
		if n.ConfigPath != CertsDir {
			d = append(d, Drift{Part: "cluster", What: "containerd registry config_path of " + n.Name, Want: CertsDir, Got: orNone([]string{n.ConfigPath})})
		}
	}
	return d
}

// registryDrift compares an existing registry container with the spec.
func (s Spec) registryDrift(c *container) []Drift {
	var d []Drift
	if c.Config.Image != s.RegistryImage {
		d = append(d, Drift{Part: "registry", What: "image of " + c.Name, Want: s.RegistryImage, Got: c.Config.Image})
	}
	want := []string{fmt.Sprintf("127.0.0.1:%d->5000/tcp", s.RegistryPort)}
	if got := c.bindings(); !slices.Equal(got, want) {
		d = append(d, Drift{Part: "registry", What: "port of " + c.Name, Want: want[0], Got: orNone(got)})
	}
	return d
}

func orNone(s []string) string {
	s = slices.DeleteFunc(slices.Clone(s), func(v string) bool { return v == "" })
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
