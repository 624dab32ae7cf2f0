package sim

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"
)

// Names of the cluster's components, in start order.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Kwok              = "kwok"
	Provisioner       = "sim-provisioner"
)

// Network and storage settings of every sim cluster.
const (
	ServiceCIDR = "10.96.0.0/16"
	PodCIDR     = "10.244.0.0/16"
	// StorageClass is the default StorageClass; its claims bind to volumes
	// that sim-provisioner creates.
	StorageClass    = "standard"
	provisionerName = "sim.alt-platform.io/hostpath"
	// leaseSeconds makes kwok renew node leases well inside the controller
	// manager's node grace period; with kwok's default status heartbeat the
	// nodes flap NotReady every minute.
	leaseSeconds = 40
)

// advertiseIP is the API server's address on the simulated node network.
const advertiseIP = "172.30.0.1"

// serviceIP is the first address of ServiceCIDR, the `kubernetes` Service.
var serviceIP = net.IPv4(10, 96, 0, 1)

// Ports are the loopback ports of one cluster, chosen free at its first
// start and kept while they stay free.
type Ports struct {
	EtcdClient        int `json:"etcdClient"`
	EtcdPeer          int `json:"etcdPeer"`
	APIServer         int `json:"apiServer"`
	ControllerManager int `json:"controllerManager"`
	Scheduler         int `json:"scheduler"`
	Kwok              int `json:"kwok"`
	Provisioner       int `json:"provisioner"`
}

func (p *Ports) list() []*int {
	return []*int{&p.EtcdClient, &p.EtcdPeer, &p.APIServer, &p.ControllerManager, &p.Scheduler, &p.Kwok, &p.Provisioner}
}

// of returns the ports a component listens on.
func (p Ports) of(name string) []int {
	switch name {
	case Etcd:
		return []int{p.EtcdClient, p.EtcdPeer}
	case APIServer:
		return []int{p.APIServer}
	case ControllerManager:
		return []int{p.ControllerManager}
	case Scheduler:
		return []int{p.Scheduler}
	case Kwok:
		return []int{p.Kwok}
	case Provisioner:
		return []int{p.Provisioner}
	}
	return nil
}

// pickPorts picks a free port for every field.
func pickPorts() (Ports, error) {
	var p Ports
	fields := p.list()
	free, err := freePorts(len(fields))
	if err != nil {
		return Ports{}, err
	}
	for i, f := range fields {
		*f = free[i]
	}
	return p, nil
}

// layout is where a cluster keeps its files.
type layout struct{ dir string }

func (l layout) path(elem ...string) string {
	return filepath.Join(append([]string{l.dir}, elem...)...)
}
func (l layout) kubeconfig() string              { return l.path("kubeconfig") }
func (l layout) componentConfig(n string) string { return l.path("kubeconfigs", n+".kubeconfig") }
func (l layout) pidFile(n string) string         { return l.path("pids", n+".pid") }
func (l layout) logFile(n string) string         { return l.path("logs", n+".log") }
func (l layout) state() string                   { return l.path("state.json") }
func (l layout) pki() pki                        { return pki{dir: l.path("pki")} }

// servingArgs are the flags of a control-plane component that reaches the
// API server with its own kubeconfig and serves its health on loopback
// with its own certificate.
func (l layout) servingArgs(k pki, name string, port int) []string {
	return []string{
		"--kubeconfig=" + l.componentConfig(name),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + k.crt(name),
		"--tls-private-key-file=" + k.key(name),
	}
}

// component is one process of the cluster and how to check it.
type component struct {
	name   string
	bin    string
	args   []string
	env    []string // added to the environment
	health string   // URL answering 200 when the component is healthy
}

// components are the processes of the cluster in start order; bins maps a
// component name to its binary.
func components(l layout, p Ports, bins map[string]string) []component {
	k := l.pki()
	loop := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	etcdClient := "http://" + loop(p.EtcdClient)
	etcdPeer := "http://" + loop(p.EtcdPeer)
	apiServer := "https://" + loop(p.APIServer)
	return []component{
		{name: Etcd, bin: bins[Etcd], health: etcdClient + "/health", args: []string{
			"--name=sim",
			"--data-dir=" + l.path("etcd"),
			"--listen-client-urls=" + etcdClient,
			"--advertise-client-urls=" + etcdClient,
			"--listen-peer-urls=" + etcdPeer,
			"--initial-advertise-peer-urls=" + etcdPeer,
			"--initial-cluster=sim=" + etcdPeer,
			"--initial-cluster-state=new",
			// A disposable development cluster: speed over durability.
			"--unsafe-no-fsync=true",
			"--log-level=warn",
		}},
		{name: APIServer, bin: bins[APIServer], health: apiServer + "/readyz", args: []string{
			"--etcd-servers=" + etcdClient,
			"--bind-address=127.0.0.1",
			// The address the `kubernetes` Service's endpoints name: a
			// loopback address is invalid there, so use the simulated
			// node network (nothing connects to it; clients use the
			// kubeconfig's 127.0.0.1).
			"--advertise-address=" + advertiseIP,
			"--secure-port=" + strconv.Itoa(p.APIServer),
			"--cert-dir=" + l.path("pki"),
			"--tls-cert-file=" + k.crt(APIServer),
			"--tls-private-key-file=" + k.key(APIServer),
			"--client-ca-file=" + k.crt("ca"),
			"--authorization-mode=RBAC",
			"--allow-privileged=true",
			// Pods are simulated, so nothing serves an admission webhook:
			// calling them would fail or hang every request they match.
			// Pod Security admission stays on (it is built in).
			"--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
			"--service-cluster-ip-range=" + ServiceCIDR,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + k.saPub(),
			"--service-account-signing-key-file=" + k.saKey(),
			"--profiling=false",
		}},
		{name: ControllerManager, bin: bins[ControllerManager], health: "https://" + loop(p.ControllerManager) + "/healthz", args: append(l.servingArgs(k, ControllerManager, p.ControllerManager),
			// nodeipam needs a cluster CIDR and is useless without a CNI;
			// node lifecycle (in "*") must run, or new nodes keep their
			// not-ready taint and nothing schedules.
			"--controllers=*,-nodeipam",
			"--leader-elect=false",
			// Controllers act as the controller manager itself, whose
			// certificate is in system:masters (see certs). kubeadm gives
			// each controller its own service account instead; fetching
			// those tokens one controller after another doubles the time
			// to a schedulable cluster (9 s instead of 4.5 s here).
			"--use-service-account-credentials=false",
			"--service-account-private-key-file="+k.saKey(),
			"--root-ca-file="+k.crt("ca"),
			"--cluster-signing-cert-file="+k.crt("ca"),
			"--cluster-signing-key-file="+k.key("ca"),
			"--service-cluster-ip-range="+ServiceCIDR,
			"--cluster-name=alt-sim",
			"--profiling=false",
		)},
		{name: Scheduler, bin: bins[Scheduler], health: "https://" + loop(p.Scheduler) + "/healthz", args: append(l.servingArgs(k, Scheduler, p.Scheduler),
			"--leader-elect=false",
			"--profiling=false",
		)},
		{name: Kwok, bin: bins[Kwok], health: "http://" + loop(p.Kwok) + "/healthz",
			// kwok reads ~/.kwok/kwok.yaml when it exists; keep it hermetic.
			env: []string{"HOME=" + l.path("kwok")},
			args: []string{
				"--kubeconfig=" + l.componentConfig(Kwok),
				"--manage-all-nodes=true",
				"--node-lease-duration-seconds=" + strconv.Itoa(leaseSeconds),
				"--server-address=" + loop(p.Kwok),
				"--cidr=" + PodCIDR,
			}},
		{name: Provisioner, bin: bins[Provisioner], health: "http://" + loop(p.Provisioner) + "/healthz", args: []string{
			"-server=" + apiServer,
			"-ca=" + k.crt("ca"),
			"-cert=" + k.crt("provisioner"),
			"-key=" + k.key("provisioner"),
			"-name=" + provisionerName,
			"-health-address=" + loop(p.Provisioner),
		}},
	}
}

// componentNames are the component names in start order.
var componentNames = []string{Etcd, APIServer, ControllerManager, Scheduler, Kwok, Provisioner}

// stopOrder stops clients first, then the API server (it shuts down
// slowly, and far more slowly once etcd is gone), then etcd.
var stopOrder = [][]string{{Kwok, Provisioner, Scheduler, ControllerManager}, {APIServer}, {Etcd}}

// stopGrace bounds how long a component may take to exit on SIGTERM before
// it gets SIGKILL.
func stopGrace(name string) time.Duration {
	switch name {
	case APIServer:
		return 15 * time.Second
	case Etcd:
		return 10 * time.Second
	}
	return 5 * time.Second
}

func describePorts(p Ports) string {
	return fmt.Sprintf("etcd %d/%d, kube-apiserver %d, kube-controller-manager %d, kube-scheduler %d, kwok %d, sim-provisioner %d",
		p.EtcdClient, p.EtcdPeer, p.APIServer, p.ControllerManager, p.Scheduler, p.Kwok, p.Provisioner)
}
