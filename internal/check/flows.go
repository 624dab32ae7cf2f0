package check

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// FlowFile is the single source of the flow table.
const FlowFile = "charts/foundation/values.yaml"

// Endpoint selects pods as the flow table does: namespace, the
// app.kubernetes.io/name label and, when set, app.kubernetes.io/component.
type Endpoint struct {
	Namespace string `json:"namespace"`
	App       string `json:"app"`
	Component string `json:"component,omitempty"`
}

func (e Endpoint) String() string {
	s := e.Namespace + "/" + e.App
	if e.Component != "" {
		s += "/" + e.Component
	}
	return s
}

func (e Endpoint) matches(ns string, l map[string]string) bool {
	return ns == e.Namespace && l["app.kubernetes.io/name"] == e.App && (e.Component == "" || l["app.kubernetes.io/component"] == e.Component)
}

// Flow is one row of the flow table: from may reach to on ports (TCP).
type Flow struct {
	From  Endpoint `json:"from"`
	To    Endpoint `json:"to"`
	Ports []int32  `json:"ports"`
	// UsedFrom marks a flow whose caller finds its destination outside
	// the workloads' configuration, so no reference shows its use:
	// "monitoring" (Prometheus discovers the pods that carry the
	// prometheus.io/scrape and prometheus.io/port annotations), "alt-code"
	// (Alt's code names the destination by a bare Service name, resolved
	// through an alias Service in the caller's namespace).
	UsedFrom string `json:"usedFrom,omitempty"`
}

// UsedFromValues are the values of Flow.UsedFrom, and what each means.
var UsedFromValues = map[string]string{
	"monitoring": "Prometheus scrapes the destination: its pods carry prometheus.io/scrape \"true\" and prometheus.io/port naming the port",
	"alt-code":   "Alt's code names the destination by its bare name (docs/alt-contract.yaml): a Service of that name exists in the caller's namespace",
}

func (f Flow) String() string {
	ps := make([]string, len(f.Ports))
	for i, p := range f.Ports {
		ps[i] = fmt.Sprint(p)
	}
	return fmt.Sprintf("flow %s -> %s:%s", f.From, f.To, strings.Join(ps, ","))
}

// Exposure is an endpoint that may talk to addresses outside the cluster
// on some ports (internetEgress, publicIngress).
type Exposure struct {
	Endpoint `json:",inline"`
	Ports    []int32 `json:"ports"`
}

// Table is the network part of the foundation values: the flow table and
// the exceptions for addresses outside the cluster.
type Table struct {
	Flows []Flow `json:"flows"`
	// InternetEgress may reach the internet on their ports.
	InternetEgress []Exposure `json:"internetEgress"`
	// PublicIngress may be reached from anywhere on their ports.
	PublicIngress []Exposure `json:"publicIngress"`
	// KubernetesAPI clients may reach the API server on its ports.
	KubernetesAPI struct {
		CIDR    string     `json:"cidr"`
		Ports   []int32    `json:"ports"`
		Clients []Endpoint `json:"clients"`
	} `json:"kubernetesAPI"`
}

// FlowTable reads the table (flows, internetEgress, publicIngress,
// kubernetesAPI) from charts/foundation/values.yaml and from the given
// values files (relative to repo) of the foundation release; a later file
// that sets a key replaces it whole, as Helm merges lists.
func FlowTable(repo string, valuesFiles ...string) (Table, error) {
	var t Table
	for i, f := range append([]string{FlowFile}, valuesFiles...) {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			return t, fmt.Errorf("flow table: %w", err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(b, &v); err != nil {
			return t, fmt.Errorf("%s: %v", f, err)
		}
		if i == 0 && v["flows"] == nil {
			return t, fmt.Errorf("%s: no flows table", f)
		}
		for _, k := range []string{"flows", "internetEgress", "publicIngress", "kubernetesAPI"} {
			if v[k] == nil {
				continue
			}
			one, _ := yaml.Marshal(map[string]any{k: v[k]})
			if err := yaml.UnmarshalStrict(one, &t); err != nil {
				return t, fmt.Errorf("%s: %s: %v", f, k, err)
			}
		}
	}
	return t, nil
}

// pod is the pods of one workload, as network policy sees them; or, with
// obj nil, an address outside the cluster.
type pod struct {
	obj    *Object
	ns     string
	labels map[string]string
	ports  []corev1.ContainerPort
	ip     netip.Addr // an address outside the cluster (obj == nil)
	// runs: a Job's or CronJob's pod, which runs to completion and serves
	// no one (it shares its app's labels, for its egress).
	runs bool
}

func (p pod) String() string {
	if p.obj == nil {
		return "the internet (" + p.ip.String() + ")"
	}
	return p.obj.ID()
}

// internet stands for any address outside the cluster.
var internet = pod{ip: netip.MustParseAddr("203.0.113.10")}

// netpol is one rendered NetworkPolicy.
type netpol struct {
	obj *Object
	np  *networkingv1.NetworkPolicy
}

// Flows checks the rendered NetworkPolicies against the flow table, per
// profile:
//
//   - every flow of the table is allowed: an egress rule of a policy in the
//     source namespace and an ingress rule of a policy in the destination
//     namespace, selecting the workloads' pods by their labels, on the
//     flow's port; each endpoint of the table selects at least one
//     workload, and each port is a container port of the destination;
//   - no other pod-to-pod flow is allowed: for every pair of workloads (in
//     different namespaces, and also within one namespace) and every
//     container port of the destination, if both sides' policies allow it,
//     the table must list it;
//   - only the table's internetEgress endpoints (on their ports) and
//     kubernetesAPI clients (on the API ports) may reach an address outside
//     the cluster, and only publicIngress endpoints (on their ports) may be
//     reached from one;
//   - every alt-* namespace has a default-deny policy for ingress and for
//     egress (empty pod selector, no rules);
//   - the table covers what the workloads call: every Service address a
//     workload is given (serviceRefs: env values, host and port variable
//     pairs, URLs, the ConfigMaps and Secrets it reads or mounts, its
//     command, its probes) has a flow from the workload to a pod the
//     Service selects, on the container port behind the Service port;
//   - every flow is used: on each of its ports some workload of its source
//     calls its destination in some profile, or the flow is marked
//     usedFrom (and the mark holds: see UsedFromValues).
//
// The evaluation follows the NetworkPolicy semantics: a pod is isolated
// for a direction once a policy with that policy type selects it, and then
// only the union of those policies' rules allows traffic. ipBlock peers are
// taken to match a pod unless they exclude every private range a pod IP
// may come from (10/8, 172.16/12, 192.168/16, 100.64/10).
func Flows(table Table, objs []*Object) error {
	var ps Problems
	order, groups := byProfile(objs)
	used := map[int]map[int32]bool{}
	for _, p := range order {
		ps = append(ps, flowsOf(table, p, groups[p])...)
		ps = append(ps, flowCalls(table, p, groups[p], used)...)
	}
	ps = append(ps, unusedFlows(table, order, groups, used)...)
	return ps.Err()
}

func flowsOf(t Table, profile string, objs []*Object) Problems {
	table := t.Flows
	var ps Problems
	nsLabels := namespaces(objs)
	nsOf := func(ns string) map[string]string {
		if l, ok := nsLabels[ns]; ok {
			return l
		}
		return map[string]string{"kubernetes.io/metadata.name": ns}
	}
	var pols []netpol
	for _, o := range objs {
		if np, ok := typed(o).(*networkingv1.NetworkPolicy); ok {
			pols = append(pols, netpol{o, np})
		}
	}
	var pods []pod
	for _, w := range workloads(objs) {
		pd := pod{obj: w.obj, ns: w.obj.Namespace, labels: w.labels, runs: !w.longRunning && w.obj.Kind != "Pod"}
		for _, c := range w.spec.Containers {
			pd.ports = append(pd.ports, c.Ports...)
		}
		for _, c := range w.spec.InitContainers {
			pd.ports = append(pd.ports, c.Ports...)
		}
		pods = append(pods, pd)
	}
	tableProblem := func(f Flow, format string, a ...any) {
		ps = append(ps, Problem{File: FlowFile, Where: f.String(), Msg: fmt.Sprintf(format, a...), Profiles: profiles(profile)})
	}

	// Every flow of the table is allowed.
	for _, f := range table {
		var srcs, dsts []pod
		for _, pd := range pods {
			if f.From.matches(pd.ns, pd.labels) {
				srcs = append(srcs, pd)
			}
			if f.To.matches(pd.ns, pd.labels) {
				dsts = append(dsts, pd)
			}
		}
		if len(srcs) == 0 {
			tableProblem(f, "the source %s selects no rendered workload (labels app.kubernetes.io/name=%s%s in namespace %s)", f.From, f.From.App, componentSel(f.From), f.From.Namespace)
		}
		if len(dsts) == 0 {
			tableProblem(f, "the destination %s selects no rendered workload (labels app.kubernetes.io/name=%s%s in namespace %s)", f.To, f.To.App, componentSel(f.To), f.To.Namespace)
		}
		for _, d := range dsts {
			for _, port := range f.Ports {
				if !d.runs && !slices.ContainsFunc(d.ports, func(cp corev1.ContainerPort) bool {
					return cp.ContainerPort == port && protocol(cp.Protocol) == corev1.ProtocolTCP
				}) {
					tableProblem(f, "port %d is not a container port of %s (the table lists pod ports)", port, d)
				}
			}
		}
		for _, s := range srcs {
			for _, d := range dsts {
				for _, port := range f.Ports {
					eg, _ := allowed(pols, nsOf, s, d, port, corev1.ProtocolTCP, true)
					in, _ := allowed(pols, nsOf, s, d, port, corev1.ProtocolTCP, false)
					if !eg {
						tableProblem(f, "egress from %s to %s port %d is not allowed by any NetworkPolicy in namespace %s", s, d, port, s.ns)
					}
					if !in {
						tableProblem(f, "ingress to %s from %s port %d is not allowed by any NetworkPolicy in namespace %s", d, s, port, d.ns)
					}
				}
			}
		}
	}

	// No other flow between two workloads, across namespaces or within one.
	for _, s := range pods {
		for _, d := range pods {
			if s.obj == d.obj {
				continue
			}
			for _, cp := range d.ports {
				proto := protocol(cp.Protocol)
				if proto == corev1.ProtocolTCP && slices.ContainsFunc(table, func(f Flow) bool {
					return f.From.matches(s.ns, s.labels) && f.To.matches(d.ns, d.labels) && slices.Contains(f.Ports, cp.ContainerPort)
				}) {
					continue
				}
				eg, egBy := allowed(pols, nsOf, s, d, cp.ContainerPort, proto, true)
				in, inBy := allowed(pols, nsOf, s, d, cp.ContainerPort, proto, false)
				if !eg || !in {
					continue
				}
				by := append(egBy, inBy...)
				ps = append(ps, Problem{File: sourceOf(by), Where: fmt.Sprintf("%s -> %s port %d/%s", s, d, cp.ContainerPort, proto),
					Msg:      fmt.Sprintf("allowed (%s), but the flow table (%s) has no such flow", describeAllow(by, s, d), FlowFile),
					Profiles: profiles(profile)})
			}
		}
	}

	// Addresses outside the cluster: only the listed endpoints, on their ports.
	probe := map[int32]bool{22: true, 53: true, 80: true, 443: true, 5432: true, 6443: true, 8080: true}
	for _, e := range t.InternetEgress {
		for _, p := range e.Ports {
			probe[p] = true
		}
	}
	for _, p := range t.KubernetesAPI.Ports {
		probe[p] = true
	}
	var probePorts []int32
	for p := range probe {
		probePorts = append(probePorts, p)
	}
	slices.Sort(probePorts)
	listed := func(es []Exposure, pd pod, port int32) bool {
		return slices.ContainsFunc(es, func(e Exposure) bool { return e.matches(pd.ns, pd.labels) && slices.Contains(e.Ports, port) })
	}
	for _, pd := range pods {
		for _, port := range probePorts {
			apiClient := slices.ContainsFunc(t.KubernetesAPI.Clients, func(e Endpoint) bool { return e.matches(pd.ns, pd.labels) }) &&
				slices.Contains(t.KubernetesAPI.Ports, port)
			if listed(t.InternetEgress, pd, port) || apiClient {
				continue
			}
			if ok, by := allowed(pols, nsOf, pd, internet, port, corev1.ProtocolTCP, true); ok {
				ps = append(ps, Problem{File: sourceOf(by), Where: fmt.Sprintf("%s -> %s port %d", pd, internet, port),
					Msg:      fmt.Sprintf("egress outside the cluster is allowed (%s), but only internetEgress and kubernetesAPI of %s may leave it", describeAllow(by, pd), FlowFile),
					Profiles: profiles(profile)})
			}
		}
		for _, cp := range pd.ports {
			if protocol(cp.Protocol) == corev1.ProtocolTCP && listed(t.PublicIngress, pd, cp.ContainerPort) {
				continue
			}
			if ok, by := allowed(pols, nsOf, internet, pd, cp.ContainerPort, protocol(cp.Protocol), false); ok {
				ps = append(ps, Problem{File: sourceOf(by), Where: fmt.Sprintf("%s -> %s port %d/%s", internet, pd, cp.ContainerPort, protocol(cp.Protocol)),
					Msg:      fmt.Sprintf("ingress from outside the cluster is allowed (%s), but only publicIngress of %s may be reached from it", describeAllow(by, pd), FlowFile),
					Profiles: profiles(profile)})
			}
		}
	}

	// Default deny in every alt-* namespace.
	for _, ns := range sortedMapKeys(nsLabels) {
		if !strings.HasPrefix(ns, "alt-") {
			continue
		}
		var in, eg bool
		for _, pl := range pols {
			if pl.obj.Namespace != ns || !emptySelector(pl.np.Spec.PodSelector) {
				continue
			}
			types := policyTypes(pl.np)
			if slices.Contains(types, networkingv1.PolicyTypeIngress) && len(pl.np.Spec.Ingress) == 0 {
				in = true
			}
			if slices.Contains(types, networkingv1.PolicyTypeEgress) && len(pl.np.Spec.Egress) == 0 {
				eg = true
			}
		}
		var missing []string
		if !in {
			missing = append(missing, "ingress")
		}
		if !eg {
			missing = append(missing, "egress")
		}
		if len(missing) > 0 {
			ps = append(ps, Problem{File: "charts/foundation/templates/networkpolicies.yaml", Where: "Namespace " + ns,
				Msg: fmt.Sprintf("no default-deny NetworkPolicy for %s (podSelector {}, policyTypes %s, no rules)", strings.Join(missing, " and "), strings.Join(missing, ", ")), Profiles: profiles(profile)})
		}
	}
	return ps
}

func componentSel(e Endpoint) string {
	if e.Component == "" {
		return ""
	}
	return ",app.kubernetes.io/component=" + e.Component
}

// describeAllow names the policies that allow a flow, or says that a side
// is not isolated at all.
func describeAllow(by []netpol, sides ...pod) string {
	var names []string
	for _, b := range by {
		names = append(names, "NetworkPolicy "+b.obj.Namespace+"/"+b.obj.Name)
	}
	sort.Strings(names)
	names = slices.Compact(names)
	for _, sd := range sides {
		if sd.obj != nil && !slices.ContainsFunc(by, func(b netpol) bool { return b.obj.Namespace == sd.ns }) {
			names = append(names, "no NetworkPolicy isolates "+sd.String())
		}
	}
	return strings.Join(names, " and ")
}

func sourceOf(by []netpol) string {
	if len(by) > 0 {
		return by[0].obj.Source
	}
	return FlowFile
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func emptySelector(s metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

func policyTypes(np *networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(np.Spec.PolicyTypes) > 0 {
		return np.Spec.PolicyTypes
	}
	t := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(np.Spec.Egress) > 0 {
		t = append(t, networkingv1.PolicyTypeEgress)
	}
	return t
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}

// allowed evaluates one direction of a flow from s to d on port/proto:
// egress (policies in s's namespace) or ingress (policies in d's). It
// returns whether the traffic is allowed and, when the pod is isolated,
// the policies whose rules allow it.
func allowed(pols []netpol, nsOf func(string) map[string]string, s, d pod, port int32, proto corev1.Protocol, egress bool) (bool, []netpol) {
	self, peer := s, d
	dir := networkingv1.PolicyTypeEgress
	if !egress {
		self, peer = d, s
		dir = networkingv1.PolicyTypeIngress
	}
	isolated := false
	var by []netpol
	for _, pl := range pols {
		if pl.obj.Namespace != self.ns || !slices.Contains(policyTypes(pl.np), dir) || !selects(&pl.np.Spec.PodSelector, self.labels) {
			continue
		}
		isolated = true
		ok := false
		if egress {
			for _, r := range pl.np.Spec.Egress {
				if peersMatch(r.To, pl.obj.Namespace, peer, nsOf) && portsMatch(r.Ports, d, port, proto) {
					ok = true
				}
			}
		} else {
			for _, r := range pl.np.Spec.Ingress {
				if peersMatch(r.From, pl.obj.Namespace, peer, nsOf) && portsMatch(r.Ports, d, port, proto) {
					ok = true
				}
			}
		}
		if ok {
			by = append(by, pl)
		}
	}
	if !isolated {
		return true, nil
	}
	return len(by) > 0, by
}

func peersMatch(peers []networkingv1.NetworkPolicyPeer, policyNS string, p pod, nsOf func(string) map[string]string) bool {
	if len(peers) == 0 {
		return true
	}
	for _, pr := range peers {
		if p.obj == nil { // outside the cluster: only ipBlocks match
			if pr.IPBlock != nil && ipBlockContains(pr.IPBlock, p.ip) {
				return true
			}
			continue
		}
		switch {
		case pr.IPBlock != nil:
			if ipBlockMayMatchPod(pr.IPBlock) {
				return true
			}
		case pr.NamespaceSelector != nil:
			if selects(pr.NamespaceSelector, nsOf(p.ns)) && (pr.PodSelector == nil || selects(pr.PodSelector, p.labels)) {
				return true
			}
		case pr.PodSelector != nil:
			if p.ns == policyNS && selects(pr.PodSelector, p.labels) {
				return true
			}
		}
	}
	return false
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, d pod, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, pp := range ports {
		pr := corev1.ProtocolTCP
		if pp.Protocol != nil {
			pr = *pp.Protocol
		}
		if pr != proto {
			continue
		}
		if pp.Port == nil {
			return true
		}
		if pp.Port.Type == intstr.String {
			for _, cp := range d.ports {
				if cp.Name == pp.Port.StrVal && cp.ContainerPort == port && protocol(cp.Protocol) == proto {
					return true
				}
			}
			continue
		}
		lo, hi := pp.Port.IntVal, pp.Port.IntVal
		if pp.EndPort != nil {
			hi = *pp.EndPort
		}
		if port >= lo && port <= hi {
			return true
		}
	}
	return false
}

var podRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
}

// ipBlockMayMatchPod reports whether an ipBlock can match a pod IP: it
// overlaps a private range that its exceptions do not cover.
func ipBlockMayMatchPod(b *networkingv1.IPBlock) bool {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Addr().Is4() {
		return err != nil // unparseable: assume the worst
	}
	for _, r := range podRanges {
		if !cidr.Overlaps(r) {
			continue
		}
		inter := r
		if cidr.Bits() > r.Bits() {
			inter = cidr
		}
		covered := false
		for _, e := range b.Except {
			ep, err := netip.ParsePrefix(e)
			if err == nil && ep.Bits() <= inter.Bits() && ep.Contains(inter.Addr()) {
				covered = true
			}
		}
		if !covered {
			return true
		}
	}
	return false
}

// ipBlockContains reports whether an address is in the block and not in
// its exceptions.
func ipBlockContains(b *networkingv1.IPBlock, ip netip.Addr) bool {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Contains(ip) {
		return false
	}
	for _, e := range b.Except {
		if ep, err := netip.ParsePrefix(e); err == nil && ep.Contains(ip) {
			return false
		}
	}
	return true
}
