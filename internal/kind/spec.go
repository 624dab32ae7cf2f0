// Package kind is the `kind` cluster provider: a local Kubernetes cluster
// in Docker, made with the kind library (sigs.k8s.io/kind/pkg/cluster), and
// a local image registry container beside it.
//
// Everything about the cluster comes from one place, Spec: its name, the
// node image (pinned by digest), the host ports that reach nginx-external,
// the registry container and how containerd in every node finds it
// (config_path and a hosts.toml, announced to tools by the
// local-registry-hosting ConfigMap of KEP-1755). The kubeconfig is
// project-local (<repo>/.cache/kind/kubeconfig); the user's own kubeconfig
// and current context are never touched.
//
// Ensure reuses a cluster whose configuration matches Spec, reports one that
// has drifted and recreates it only when asked (ALT_KIND_RECREATE=1).
package kind

import (
	"fmt"
	"strconv"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

// NodeImage is the kind node image, Kubernetes v1.34 like the sim cluster's
// control plane (v1.34.2). kind v0.33.0 defaults to v1.37.0; this is the
// v1.34 image its release notes list as pre-built for v0.33.0
// (https://github.com/kubernetes-sigs/kind/releases/tag/v0.33.0). The digest
// is what makes it an image built for this kind release.
const NodeImage = "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d"

// RegistryImage is the local registry (distribution 2.8.3), pinned by the
// digest of its multi-platform index.
const RegistryImage = "registry:2@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373"

// Network is the Docker network kind puts its nodes on; the registry
// container joins it so nodes reach it by name.
const Network = "kind"

// CertsDir is containerd's registry host configuration folder in a node.
const CertsDir = "/etc/containerd/certs.d"

// Port maps a host port (on 127.0.0.1) to a port of the control-plane node.
type Port struct {
	Host int32
	Node int32
	// Service names what answers there.
	Service string
	// Setting is the variable that chooses Host.
	Setting string
}

// Ports are the node ports of nginx-external (charts/nginx, dev values in
// skaffold/06-application/values/nginx-external.yaml) reached from
// localhost: 80 → nodePort 30080 (http) and 443 → nodePort 30443 (https).
var Ports = PortsOn(80, 443)

// PortsOn are Ports with other host ports (ALT_KIND_HTTP_PORT,
// ALT_KIND_HTTPS_PORT): a second cluster beside the first.
func PortsOn(http, https int) []Port {
	return []Port{
		{Host: int32(http), Node: 30080, Service: "nginx-external http", Setting: "ALT_KIND_HTTP_PORT"},
		{Host: int32(https), Node: 30443, Service: "nginx-external https", Setting: "ALT_KIND_HTTPS_PORT"},
	}
}

// Spec is the whole desired state of the cluster and its registry.
type Spec struct {
	// Name of the kind cluster; kube context kind-<Name>.
	Name string
	// NodeImage of every node.
	NodeImage string
	// Ports published by the control-plane node.
	Ports []Port
	// ListenAddress of the published ports: loopback, this is a dev
	// cluster.
	ListenAddress string
	// RegistryName is the registry container, RegistryImage its image and
	// RegistryPort its port on 127.0.0.1.
	RegistryName  string
	RegistryImage string
	RegistryPort  int
	// Offline: NodeImage and RegistryImage are the images built on this
	// machine (internal/kindimage); their node has no kindnetd image, so
	// kind installs no CNI and the node's own bridge config serves.
	Offline bool
	// RestrictOOMScoreAdj makes containerd in the nodes leave pods'
	// oom_score_adj alone: runc cannot lower it where the Docker daemon
	// lacks CAP_SYS_RESOURCE (pod sandboxes then fail).
	RestrictOOMScoreAdj bool
}

// NewSpec is the Spec of the cluster of that name whose registry listens on
// that host port.
func NewSpec(name string, registryPort int) Spec {
	return Spec{
		Name:          name,
		NodeImage:     NodeImage,
		Ports:         append([]Port(nil), Ports...),
		ListenAddress: "127.0.0.1",
		RegistryName:  name + "-registry",
		RegistryImage: RegistryImage,
		RegistryPort:  registryPort,
	}
}

// Context is the kube context kind names the cluster by.
func (s Spec) Context() string { return "kind-" + s.Name }

// RegistryHost is the registry as seen from the host and, through
// hosts.toml, from inside every node: images are pushed to and pulled from
// localhost:<port>.
func (s Spec) RegistryHost() string { return "localhost:" + strconv.Itoa(s.RegistryPort) }

// containerdPatch makes containerd read registry hosts from CertsDir (the
// hosts.toml way; the registry.mirrors patches are deprecated). The node
// image's config.toml is containerd config version 2; containerd 2.x
// migrates this key on load.
const containerdPatch = `[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "` + CertsDir + `"
`

// oomPatch lets containerd run pods where runc cannot lower oom_score_adj
// (what kind does for rootless nodes).
const oomPatch = `[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
`

// Config is the kind Cluster object (v1alpha4) of the spec: one
// control-plane node of NodeImage publishing Ports, containerd reading
// registry hosts from CertsDir; offline, no default CNI.
func (s Spec) Config() *v1alpha4.Cluster {
	var ports []v1alpha4.PortMapping
	for _, p := range s.Ports {
		ports = append(ports, v1alpha4.PortMapping{
			ContainerPort: p.Node,
			HostPort:      p.Host,
			ListenAddress: s.ListenAddress,
			Protocol:      v1alpha4.PortMappingProtocolTCP,
		})
	}
	patches := []string{containerdPatch}
	if s.RestrictOOMScoreAdj {
		patches = append(patches, oomPatch)
	}
	return &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     s.Name,
		Nodes: []v1alpha4.Node{{
			Role:              v1alpha4.ControlPlaneRole,
			Image:             s.NodeImage,
			ExtraPortMappings: ports,
		}},
		Networking:              v1alpha4.Networking{DisableDefaultCNI: s.Offline},
		ContainerdConfigPatches: patches,
		// MutatingAdmissionPolicy (beta, off by default in v1.34): with
		// stand-in sources the engine installs one that lowers the CPU
		// requests of the platform's pods, so the whole platform schedules
		// on a small machine's single node (internal/engine/standins.go).
		FeatureGates:  map[string]bool{"MutatingAdmissionPolicy": true},
		RuntimeConfig: map[string]string{"admissionregistration.k8s.io/v1beta1": "true"},
	}
}

// ConfigYAML is Config as kind's config file format, for people and logs.
func (s Spec) ConfigYAML() ([]byte, error) { return yaml.Marshal(s.Config()) }

// HostsDir is the folder in a node holding the hosts.toml of RegistryHost.
func (s Spec) HostsDir() string { return CertsDir + "/" + s.RegistryHost() }

// HostsTOML tells containerd in a node that RegistryHost is the registry
// container, over plain HTTP on the kind network.
func (s Spec) HostsTOML() string {
	return fmt.Sprintf("# %s is the registry container %s on the %q Docker network.\n[host.%q]\n",
		s.RegistryHost(), s.RegistryName, Network, "http://"+s.RegistryName+":5000")
}

// RegistryHosting is the data of the ConfigMap kube-public/
// local-registry-hosting (KEP-1755) that tells tools where to push.
func (s Spec) RegistryHosting() map[string]string {
	return map[string]string{
		"localRegistryHosting.v1": fmt.Sprintf("host: %q\nhelp: %q\n", s.RegistryHost(), "https://kind.sigs.k8s.io/docs/user/local-registry/"),
	}
}
