package sim

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 12 0 987654 1000 100 18446744073709551615"
	state, start, err := parseStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	if state != 'S' || start != 987654 {
		t.Fatalf("state %c start %d, want S 987654", state, start)
	}
	if _, _, err := parseStat("4242 (x) S 1 2"); err == nil {
		t.Fatal("short stat: want an error")
	}
}

func TestPidFileRoundTrip(t *testing.T) {
	p := proc{PID: 123, Start: 456}
	got, err := parsePidFile([]byte(p.String()))
	if err != nil || got != p {
		t.Fatalf("got %+v, %v; want %+v", got, err, p)
	}
	for _, bad := range []string{"", "123", "x 1", "-1 5", "12 y"} {
		if _, err := parsePidFile([]byte(bad)); err == nil {
			t.Errorf("parsePidFile(%q): want an error", bad)
		}
	}
}

func TestAliveChecksStartTime(t *testing.T) {
	_, start, err := statOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !(proc{PID: os.Getpid(), Start: start}).alive() {
		t.Fatal("this process: want alive")
	}
	if (proc{PID: os.Getpid(), Start: start + 1}).alive() {
		t.Fatal("same PID, other start time (a reused PID): want not alive")
	}
	if (proc{}).alive() {
		t.Fatal("zero proc: want not alive")
	}
}

func TestSpawnAndStop(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "sleep.log")
	p, err := spawn(sleep, []string{"60"}, os.Environ(), dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if !p.alive() {
		t.Fatal("spawned process: want alive")
	}
	// Its own session: it is the leader of its process group.
	if pgid, err := syscall.Getpgid(p.PID); err != nil || pgid != p.PID {
		t.Fatalf("pgid %d (%v), want %d", pgid, err, p.PID)
	}
	killed, err := stop(context.Background(), p, 5*time.Second)
	if err != nil || killed {
		t.Fatalf("stop: killed=%v err=%v; want a clean SIGTERM exit", killed, err)
	}
	if p.alive() {
		t.Fatal("stopped process (a zombie until reaped): want not alive")
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), "started by alt-platform sim") {
		t.Fatalf("log %s lacks the start banner: %q", log, b)
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := freePorts(7)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want distinct positive ports", ports)
		}
		seen[p] = true
		if !portFree(p) {
			t.Fatalf("port %d: want free after picking", p)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if portFree(l.Addr().(*net.TCPAddr).Port) {
		t.Fatal("a listening port: want not free")
	}
}

func TestPickPortsFillsEveryField(t *testing.T) {
	p, err := pickPorts()
	if err != nil {
		t.Fatal(err)
	}
	var all []int
	for _, n := range componentNames {
		if len(p.of(n)) == 0 {
			t.Fatalf("component %s has no port", n)
		}
		all = append(all, p.of(n)...)
	}
	for _, f := range p.list() {
		if *f == 0 {
			t.Fatalf("unset port in %+v", p)
		}
	}
	slices.Sort(all)
	if len(slices.Compact(all)) != len(p.list()) {
		t.Fatalf("ports of components %v do not cover %+v exactly once", all, p)
	}
}

func testPorts() Ports {
	return Ports{EtcdClient: 1001, EtcdPeer: 1002, APIServer: 1003, ControllerManager: 1004, Scheduler: 1005, Kwok: 1006, Provisioner: 1007}
}

func TestComponentArgs(t *testing.T) {
	l := layout{dir: "/r/.cache/sim"}
	bins := map[string]string{}
	for _, n := range componentNames {
		bins[n] = "/bin/" + n
	}
	comps := components(l, testPorts(), bins)
	var names []string
	args := map[string][]string{}
	for _, c := range comps {
		names = append(names, c.name)
		args[c.name] = c.args
		if c.bin != "/bin/"+c.name {
			t.Errorf("%s: binary %q", c.name, c.bin)
		}
		if !strings.HasPrefix(c.health, "http") || !strings.Contains(c.health, "127.0.0.1:") {
			t.Errorf("%s: health URL %q not on loopback", c.name, c.health)
		}
	}
	if !slices.Equal(names, componentNames) {
		t.Fatalf("start order %v, want %v", names, componentNames)
	}
	want := map[string][]string{
		Etcd: {"--listen-client-urls=http://127.0.0.1:1001", "--listen-peer-urls=http://127.0.0.1:1002",
			"--initial-cluster=sim=http://127.0.0.1:1002", "--data-dir=/r/.cache/sim/etcd"},
		APIServer: {"--etcd-servers=http://127.0.0.1:1001", "--secure-port=1003", "--bind-address=127.0.0.1",
			"--client-ca-file=/r/.cache/sim/pki/ca.crt", "--authorization-mode=RBAC",
			"--service-cluster-ip-range=" + ServiceCIDR,
			"--service-account-key-file=/r/.cache/sim/pki/sa.pub", "--service-account-signing-key-file=/r/.cache/sim/pki/sa.key",
			"--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook"},
		ControllerManager: {"--controllers=*,-nodeipam", "--secure-port=1004", "--leader-elect=false",
			"--service-account-private-key-file=/r/.cache/sim/pki/sa.key", "--root-ca-file=/r/.cache/sim/pki/ca.crt",
			"--kubeconfig=/r/.cache/sim/kubeconfigs/kube-controller-manager.kubeconfig"},
		Scheduler: {"--secure-port=1005", "--leader-elect=false", "--kubeconfig=/r/.cache/sim/kubeconfigs/kube-scheduler.kubeconfig"},
		Kwok:      {"--manage-all-nodes=true", "--node-lease-duration-seconds=40", "--server-address=127.0.0.1:1006"},
		Provisioner: {"-server=https://127.0.0.1:1003", "-health-address=127.0.0.1:1007", "-name=" + provisionerName,
			"-cert=/r/.cache/sim/pki/provisioner.crt"},
	}
	for name, ws := range want {
		for _, w := range ws {
			if !slices.Contains(args[name], w) {
				t.Errorf("%s: missing %s in %v", name, w, args[name])
			}
		}
	}
	// Pod Security admission must stay on: nothing disables it.
	for _, a := range args[APIServer] {
		if strings.Contains(a, "PodSecurity") {
			t.Errorf("kube-apiserver: %s touches Pod Security admission", a)
		}
	}
}

func TestStopOrderCoversEveryComponentAPIServerBeforeEtcd(t *testing.T) {
	var order []string
	for _, g := range stopOrder {
		order = append(order, g...)
	}
	got := slices.Clone(order)
	slices.Sort(got)
	want := slices.Clone(componentNames)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("stop order %v does not cover %v", order, componentNames)
	}
	if slices.Index(order, APIServer) > slices.Index(order, Etcd) {
		t.Fatal("kube-apiserver must stop before etcd")
	}
	if stopGrace(APIServer) <= stopGrace(Kwok) {
		t.Fatal("kube-apiserver needs a longer grace than the clients")
	}
}

func TestPKI(t *testing.T) {
	k := pki{dir: t.TempDir()}
	if err := k.ensure(serviceIP); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(k.crt("ca"))
	saKey, _ := os.ReadFile(k.saKey())
	admin := parseCert(t, k.crt("admin"))
	if !slices.Contains(admin.Subject.Organization, "system:masters") {
		t.Errorf("admin organizations %v: want system:masters", admin.Subject.Organization)
	}
	api := parseCert(t, k.crt(APIServer))
	roots := x509.NewCertPool()
	roots.AddCert(parseCert(t, k.crt("ca")))
	for _, host := range []string{"127.0.0.1", "10.96.0.1", "kubernetes.default.svc", "localhost"} {
		if _, err := api.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("kube-apiserver certificate for %s: %v", host, err)
		}
	}
	if _, err := parseCert(t, k.crt(Scheduler)).Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("kube-scheduler certificate: %v", err)
	}
	if fi, _ := os.Stat(k.key("ca")); fi.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode %v, want 0600", fi.Mode().Perm())
	}
	// A second ensure keeps the CA and the service-account key, and only
	// fills in what is missing.
	os.Remove(k.crt(Kwok))
	if err := k.ensure(serviceIP); err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(k.crt("ca"))
	saKey2, _ := os.ReadFile(k.saKey())
	if string(ca) != string(ca2) || string(saKey) != string(saKey2) {
		t.Fatal("second ensure replaced the CA or the service-account key")
	}
	if !exists(k.crt(Kwok)) {
		t.Fatal("second ensure did not recreate the missing kwok certificate")
	}
}

func parseCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: not PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ca.crt", "a.crt", "a.key"} {
		os.WriteFile(filepath.Join(dir, f), []byte("PEM "+f), 0o600)
	}
	ca, crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key")
	byPath, err := kubeconfig("https://127.0.0.1:6443", ca, crt, key, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"server: https://127.0.0.1:6443", "certificate-authority: " + ca, "client-key: " + key, "current-context: alt-sim"} {
		if !strings.Contains(string(byPath), w) {
			t.Errorf("kubeconfig lacks %q:\n%s", w, byPath)
		}
	}
	embedded, err := kubeconfig("https://127.0.0.1:6443", ca, crt, key, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(embedded), "client-certificate-data: UEVNIGEuY3J0") || strings.Contains(string(embedded), dir) {
		t.Errorf("embedded kubeconfig should inline the files:\n%s", embedded)
	}
	if _, err := kubeconfig("https://x", ca, filepath.Join(dir, "missing"), key, true); err == nil {
		t.Error("missing certificate: want an error")
	}
}

func TestBootstrapManifest(t *testing.T) {
	m := bootstrapManifest("v1.34.2")
	if n := strings.Count(m, "kind: Node\n"); n != NodeCount {
		t.Errorf("%d nodes, want %d", n, NodeCount)
	}
	for _, w := range []string{
		"name: sim-node-1", "name: sim-node-3", "kubernetes.io/os: linux", "node.alpha.kubernetes.io/ttl: \"0\"",
		`cpu: "8"`, "memory: 32Gi", `pods: "110"`, "kubeletVersion: v1.34.2",
		"kind: StorageClass", "storageclass.kubernetes.io/is-default-class: \"true\"", "provisioner: " + provisionerName,
		"volumeBindingMode: WaitForFirstConsumer",
	} {
		if !strings.Contains(m, w) {
			t.Errorf("bootstrap manifest lacks %q", w)
		}
	}
}

func TestNotReadyNodes(t *testing.T) {
	body := `{"items":[
	 {"metadata":{"name":"sim-node-1"},"status":{"conditions":[{"type":"Ready","status":"True"}]}},
	 {"metadata":{"name":"sim-node-2"},"spec":{"taints":[{"key":"node.kubernetes.io/not-ready","effect":"NoSchedule"}]},
	  "status":{"conditions":[{"type":"Ready","status":"True"}]}},
	 {"metadata":{"name":"other"},"status":{}}]}`
	bad, err := notReadyNodes([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sim-node-2: tainted node.kubernetes.io/not-ready", "sim-node-3: missing"}
	if !slices.Equal(bad, want) {
		t.Fatalf("got %q, want %q", bad, want)
	}
	if _, err := notReadyNodes([]byte("{")); err == nil {
		t.Fatal("bad JSON: want an error")
	}
}

func TestProvisionerDirKeyedBySource(t *testing.T) {
	a := provisionerDir("/cache")
	if a != provisionerDir("/cache") || !strings.HasPrefix(filepath.Base(a), Provisioner+"-") {
		t.Fatalf("provisioner dir %q: want stable and named after the tool", a)
	}
	old := provisionerSource
	defer func() { provisionerSource = old }()
	provisionerSource = append(slices.Clone(old), "// edited\n"...)
	if provisionerDir("/cache") == a {
		t.Fatal("an edited source must get a new folder")
	}
}

func TestStatusWithoutCluster(t *testing.T) {
	c := &Cluster{Dir: filepath.Join(t.TempDir(), "sim")}
	_, err := c.Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "mage sim:up") {
		t.Fatalf("status of no cluster: %v; want an error saying to run mage sim:up", err)
	}
	if err := c.Down(context.Background(), true); err != nil {
		t.Fatalf("down of no cluster: %v", err)
	}
}

func TestChoosePorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	free, err := pickPorts()
	if err != nil {
		t.Fatal(err)
	}
	comps := func(running ...string) []Component {
		var cs []Component
		for _, n := range componentNames {
			cs = append(cs, Component{Name: n, Running: slices.Contains(running, n)})
		}
		return cs
	}

	if p, restart, err := choosePorts(nil, nil); err != nil || restart || p.APIServer == 0 {
		t.Fatalf("no state: %+v restart=%v err=%v; want new ports, no restart", p, restart, err)
	}
	st := &state{Ports: free}
	if p, restart, _ := choosePorts(st, comps()); p != free || restart {
		t.Fatalf("stopped cluster, ports free: %+v restart=%v; want the recorded ports", p, restart)
	}
	// The API server runs and holds its port: that is no conflict.
	held := free
	held.APIServer = busy
	if p, restart, _ := choosePorts(&state{Ports: held}, comps(APIServer)); p != held || restart {
		t.Fatalf("running component on its own port: %+v restart=%v; want the recorded ports", p, restart)
	}
	// The scheduler must start but another program took its port: new
	// ports for everyone, and the running components restart on them.
	taken := free
	taken.Scheduler = busy
	p, restart, _ := choosePorts(&state{Ports: taken}, comps(Etcd, APIServer))
	if p == taken || !restart {
		t.Fatalf("taken port of a stopped component: %+v restart=%v; want new ports and a restart", p, restart)
	}
	if _, restart, _ := choosePorts(&state{Ports: taken}, comps()); restart {
		t.Fatal("nothing runs: nothing to restart")
	}
}

func TestServerPortRange(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int
	}{
		{"32768\t60999\n", 10000, 32767},
		{"50000 65000", 10000, 49999},
		{"1024 40000", 40001, 65535},
		{"", 20000, 29999},
		{"9000 65535", 20000, 29999},
	} {
		if lo, hi := serverPortRange(tc.in); lo != tc.lo || hi != tc.hi {
			t.Errorf("serverPortRange(%q) = %d-%d, want %d-%d", tc.in, lo, hi, tc.lo, tc.hi)
		}
	}
	lo, hi := serverPortRange(readFile("/proc/sys/net/ipv4/ip_local_port_range"))
	ports, err := freePorts(7)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p < lo || p > hi {
			t.Errorf("port %d outside %d-%d", p, lo, hi)
		}
	}
}
