package sim

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// kubeconfig renders a kubeconfig for one user of the cluster. With embed
// the certificates are inlined, so the file works when copied elsewhere.
func kubeconfig(server, ca, crt, key string, embed bool) ([]byte, error) {
	field := func(name, path string) (string, error) {
		if !embed {
			return fmt.Sprintf("%s: %s", name, path), nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s-data: %s", name, base64.StdEncoding.EncodeToString(b)), nil
	}
	caLine, err := field("certificate-authority", ca)
	if err != nil {
		return nil, err
	}
	crtLine, err := field("client-certificate", crt)
	if err != nil {
		return nil, err
	}
	keyLine, err := field("client-key", key)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: alt-sim
  cluster:
    server: %s
    %s
users:
- name: alt-sim
  user:
    %s
    %s
contexts:
- name: alt-sim
  context:
    cluster: alt-sim
    user: alt-sim
current-context: alt-sim
`, server, caLine, crtLine, keyLine), nil
}

// Node capacity of the simulated nodes.
const (
	NodeCount  = 3
	nodeCPU    = "8"
	nodeMemory = "32Gi"
	nodePods   = "110"
)

// nodeName is the name of simulated node i (from 1).
func nodeName(i int) string { return fmt.Sprintf("sim-node-%d", i) }

// bootstrapManifest is what Up applies once the API server is ready: the
// simulated nodes (kwok manages every node; the ttl annotation is what a
// kubelet's node would carry) and the default StorageClass.
func bootstrapManifest(version string) string {
	var b strings.Builder
	zones := []string{"a", "b", "c"}
	for i := 1; i <= NodeCount; i++ {
		fmt.Fprintf(&b, `apiVersion: v1
kind: Node
metadata:
  name: %[1]s
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: %[1]s
    node.kubernetes.io/instance-type: sim
    topology.kubernetes.io/region: sim
    topology.kubernetes.io/zone: sim-%[2]s
    type: kwok
status:
  allocatable: {cpu: "%[3]s", memory: %[4]s, pods: "%[5]s", ephemeral-storage: 100Gi}
  capacity: {cpu: "%[3]s", memory: %[4]s, pods: "%[5]s", ephemeral-storage: 100Gi}
  addresses:
  - {type: InternalIP, address: 172.30.0.%[6]d}
  - {type: Hostname, address: %[1]s}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: %[7]s
    containerRuntimeVersion: kwok
    kernelVersion: kwok
    osImage: kwok
---
`, nodeName(i), zones[(i-1)%len(zones)], nodeCPU, nodeMemory, nodePods, 10+i, version)
	}
	fmt.Fprintf(&b, `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: %s
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: %s
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
`, StorageClass, provisionerName)
	return b.String()
}
