package check

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/alt-platform/orchestration/internal/stack"
)

// ref is one object a pod spec names.
type ref struct {
	kind     string // Secret, ConfigMap, ServiceAccount, PersistentVolumeClaim
	name     string
	key      string // the key of a Secret/ConfigMap key reference
	path     string // field path, e.g. spec.template.spec.containers[app].env[DB_PASSWORD]
	optional bool
}

// podRefs lists every Secret, ConfigMap, ServiceAccount and PVC a pod spec
// references: env valueFrom, envFrom, volumes (projected included),
// serviceAccountName and imagePullSecrets.
func podRefs(w workload) []ref {
	var rs []ref
	opt := func(b *bool) bool { return b != nil && *b }
	p := w.specPath
	for _, c := range w.containers() {
		for _, e := range c.c.Env {
			if e.ValueFrom == nil {
				continue
			}
			path := c.path + ".env[" + e.Name + "]"
			if s := e.ValueFrom.SecretKeyRef; s != nil {
				rs = append(rs, ref{"Secret", s.Name, s.Key, path, opt(s.Optional)})
			}
			if cm := e.ValueFrom.ConfigMapKeyRef; cm != nil {
				rs = append(rs, ref{"ConfigMap", cm.Name, cm.Key, path, opt(cm.Optional)})
			}
		}
		for i, ef := range c.c.EnvFrom {
			path := fmt.Sprintf("%s.envFrom[%d]", c.path, i)
			if ef.SecretRef != nil {
				rs = append(rs, ref{"Secret", ef.SecretRef.Name, "", path, opt(ef.SecretRef.Optional)})
			}
			if ef.ConfigMapRef != nil {
				rs = append(rs, ref{"ConfigMap", ef.ConfigMapRef.Name, "", path, opt(ef.ConfigMapRef.Optional)})
			}
		}
	}
	for _, v := range w.spec.Volumes {
		path := p + ".volumes[" + v.Name + "]"
		switch {
		case v.Secret != nil:
			rs = append(rs, itemRefs("Secret", v.Secret.SecretName, v.Secret.Items, path, opt(v.Secret.Optional))...)
		case v.ConfigMap != nil:
			rs = append(rs, itemRefs("ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items, path, opt(v.ConfigMap.Optional))...)
		case v.PersistentVolumeClaim != nil:
			rs = append(rs, ref{"PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName, "", path, false})
		case v.Projected != nil:
			for i, s := range v.Projected.Sources {
				sp := fmt.Sprintf("%s.projected.sources[%d]", path, i)
				if s.Secret != nil {
					rs = append(rs, itemRefs("Secret", s.Secret.Name, s.Secret.Items, sp, opt(s.Secret.Optional))...)
				}
				if s.ConfigMap != nil {
					rs = append(rs, itemRefs("ConfigMap", s.ConfigMap.Name, s.ConfigMap.Items, sp, opt(s.ConfigMap.Optional))...)
				}
			}
		}
	}
	sa := w.spec.ServiceAccountName
	if sa == "" {
		sa = w.spec.DeprecatedServiceAccount
	}
	if sa == "" {
		sa = "default"
	}
	rs = append(rs, ref{"ServiceAccount", sa, "", p + ".serviceAccountName", false})
	for i, s := range w.spec.ImagePullSecrets {
		rs = append(rs, ref{"Secret", s.Name, "", fmt.Sprintf("%s.imagePullSecrets[%d]", p, i), false})
	}
	return rs
}

func itemRefs(kind, name string, items []corev1.KeyToPath, path string, optional bool) []ref {
	if len(items) == 0 {
		return []ref{{kind, name, "", path, optional}}
	}
	var rs []ref
	for _, it := range items {
		rs = append(rs, ref{kind, name, it.Key, path, optional})
	}
	return rs
}

// builtin are the objects Kubernetes makes in every namespace.
func builtin(kind, name string) bool {
	return kind == "ConfigMap" && name == "kube-root-ca.crt" || kind == "ServiceAccount" && name == "default"
}

// builtinNamespaces exist in every cluster.
var builtinNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

type objKey struct{ kind, ns, name string }

// References checks, per profile, that everything a layer's objects need
// comes from the layer itself or from a layer it depends on in the Mage
// graph (g, from magefiles/):
//
//   - every Secret, ConfigMap, ServiceAccount and PVC a workload references
//     (env valueFrom, envFrom, volumes, projected volumes,
//     serviceAccountName, imagePullSecrets) is created by such a layer, or
//     is one Kubernetes makes (kube-root-ca.crt, the default ServiceAccount;
//     PVCs of volumeClaimTemplates are not referenced by volumes);
//     a referenced key exists in the created object;
//   - a Secret that the profile does not create (staging/prod provide
//     them) is verified by a hook (before/after) of the consumer's layer or
//     a layer it depends on: a hook that can fail and calls check-secret
//     with the consumer's namespace, the Secret and the key (see verified;
//     Hooks says how a hook is read); and when
//     another profile creates it, that creator is a layer the consumer
//     depends on;
//   - every namespaced object's namespace is created by such a layer (or
//     is built in: default, kube-system, ...);
//   - every DNS name of a Service (<svc>.<ns>.svc..., or <svc>.<ns> for a
//     platform namespace) in a container's env values, and in the data of
//     every ConfigMap it reads, names a Service that exists and is created
//     by such a layer. A ConfigMap no workload reads is a note: its
//     addresses have no consumer to attribute them to.
//
// Optional references (optional: true) are not required to exist.
func References(s *stack.Stack, g *stack.Graph, objs []*Object) ([]Note, error) {
	var ps Problems
	var notes []Note
	order, groups := byProfile(objs)

	// Who creates each Secret in any profile (staging/prod provide what dev creates).
	owners := map[objKey]map[string]bool{}
	for _, o := range objs {
		if o.Kind == "Secret" {
			k := objKey{"Secret", o.Namespace, o.Name}
			if owners[k] == nil {
				owners[k] = map[string]bool{}
			}
			owners[k][o.Layer] = true
		}
	}
	skippedNS := map[string]string{} // namespace of a release that was not rendered → why
	for _, l := range s.Layers {
		for _, p := range order {
			if v, err := l.View(p, nil); err == nil {
				for _, r := range v.Releases {
					if r.Remote {
						skippedNS[r.Namespace] = fmt.Sprintf("release %s (remote chart %s) is not rendered", r.Name, r.Chart)
					}
				}
			}
		}
	}

	needs := func(consumer, creator string) bool {
		return consumer == creator || g.DependsOn(consumer, creator)
	}

	for _, p := range order {
		objs := groups[p]
		created := map[objKey]*Object{}
		for _, o := range objs {
			created[objKey{o.Kind, o.Namespace, o.Name}] = o
		}
		// A cert-manager Certificate's Secret is made by cert-manager
		// from it: created by the Certificate's layer.
		for _, o := range objs {
			if name := certificateSecret(o); name != "" {
				if _, ok := created[objKey{"Secret", o.Namespace, name}]; !ok {
					created[objKey{"Secret", o.Namespace, name}] = o
				}
			}
		}
		hooks := layerHooks(s, p)

		// Namespaces.
		for _, o := range objs {
			if o.Namespace == "" || builtinNamespaces[o.Namespace] {
				continue
			}
			nsObj, ok := created[objKey{"Namespace", "", o.Namespace}]
			switch {
			case !ok:
				ps = append(ps, o.problem("namespace %s is created by no release (01-foundation creates every namespace)", o.Namespace))
			case !needs(o.Layer, nsObj.Layer):
				ps = append(ps, o.problem("namespace %s is created by layer %s, which layer %s does not depend on", o.Namespace, nsObj.Layer, o.Layer))
			}
		}

		consumed := map[objKey]bool{}
		for _, w := range workloads(objs) {
			ns := w.obj.Namespace
			for _, r := range podRefs(w) {
				k := objKey{r.kind, ns, r.name}
				if r.kind == "ConfigMap" {
					consumed[k] = true
				}
				if builtin(r.kind, r.name) {
					continue
				}
				c, ok := created[k]
				if ok {
					if !needs(w.obj.Layer, c.Layer) {
						ps = append(ps, w.obj.problem("%s: %s %s/%s is created by layer %s (release %s), which layer %s does not depend on in the Mage graph; add the dependency (magefiles) or move the object",
							r.path, r.kind, ns, r.name, c.Layer, c.Release, w.obj.Layer))
					}
					if r.key != "" && !r.optional && !hasKey(c, r.key) {
						ps = append(ps, w.obj.problem("%s: %s %s/%s (release %s) has no key %q", r.path, r.kind, ns, r.name, c.Release, r.key))
					}
					continue
				}
				if r.optional {
					continue
				}
				if r.kind != "Secret" {
					ps = append(ps, w.obj.problem("%s: %s %s/%s is created by no release", r.path, r.kind, ns, r.name))
					continue
				}
				// A Secret this profile does not create: provided outside the
				// repository and verified by a hook.
				var bad []string
				for l := range owners[k] {
					if !needs(w.obj.Layer, l) {
						bad = append(bad, l)
					}
				}
				sort.Strings(bad)
				if len(bad) > 0 {
					ps = append(ps, w.obj.problem("%s: Secret %s/%s is owned by layer %s (which creates it in another profile), which layer %s does not depend on",
						r.path, ns, r.name, strings.Join(bad, ", "), w.obj.Layer))
				}
				if !verified(hooks, s, g, w.obj.Layer, ns, r.name, r.key) {
					what := "Secret " + ns + "/" + r.name
					if r.key != "" {
						what += " key " + r.key
					}
					ps = append(ps, w.obj.problem("%s: %s is not created in this profile and no hook of layer %s (or a layer it depends on) verifies it; add a before-hook that checks the Secret and its keys: scripts/check-secret %s %s KEY...",
						r.path, what, w.obj.Layer, ns, r.name))
				}
			}
		}

		// DNS names of Services.
		services, nsNames := servicesOf(objs)
		for _, w := range workloads(objs) {
			for _, d := range serviceRefs(w, created, nsNames) {
				if d.ns == "default" && d.svc == "kubernetes" {
					continue
				}
				svc, ok := services[objKey{"Service", d.ns, d.svc}]
				switch {
				case ok:
					if !needs(w.obj.Layer, svc.Layer) {
						ps = append(ps, w.obj.problem("%s: %q names Service %s/%s of layer %s (release %s), which layer %s does not depend on in the Mage graph; add the dependency (magefiles) or drop the reference",
							d.where, d.host, d.ns, d.svc, svc.Layer, svc.Release, w.obj.Layer))
					}
				case skippedNS[d.ns] != "":
					notes = append(notes, Note{Check: "references", What: fmt.Sprintf("%q in %s", d.host, w.obj.Desc()), Why: skippedNS[d.ns]})
				default:
					ps = append(ps, w.obj.problem("%s: %q names Service %s/%s, which no release creates", d.where, d.host, d.ns, d.svc))
				}
			}
		}
		for _, o := range objs {
			if o.Kind != "ConfigMap" || consumed[objKey{"ConfigMap", o.Namespace, o.Name}] {
				continue
			}
			data := configMapData(o)
			var hosts []string
			for _, k := range sortedMapKeys(data) {
				for _, d := range dnsRefs(data[k], nsNames) {
					hosts = append(hosts, d.svc+"."+d.ns)
				}
			}
			if len(hosts) > 0 {
				notes = append(notes, Note{Check: "references", What: fmt.Sprintf("DNS names in ConfigMap %s (release %s, layer %s, %s)", o.Name, o.Release, o.Layer, o.Source),
					Why: fmt.Sprintf("no workload reads this ConfigMap, so its %d Service addresses have no consumer layer to check against", len(hosts))})
			}
		}
	}
	return dedupeNotes(notes), ps.Err()
}

func hasKey(o *Object, key string) bool {
	switch t := typed(o).(type) {
	case *corev1.Secret:
		if _, ok := t.Data[key]; ok {
			return true
		}
		_, ok := t.StringData[key]
		return ok
	case *corev1.ConfigMap:
		if _, ok := t.Data[key]; ok {
			return true
		}
		_, ok := t.BinaryData[key]
		return ok
	}
	return true
}

func configMapData(o *Object) map[string]string {
	if cm, ok := typed(o).(*corev1.ConfigMap); ok {
		return cm.Data
	}
	return nil
}

// verified reports whether a hook of layer (or of a layer it depends on)
// checks the namespace's Secret and the key: the hook can fail (Hooks) and
// calls check_secret (scripts/lib/kube.sh, which scripts/check-secret
// runs) with that namespace, that name and the key among its keys, as the
// shell expanded the arguments. What the hook calls counts, not the words
// written in it.
func verified(hooks map[string][]hook, s *stack.Stack, g *stack.Graph, layer, ns, name, key string) bool {
	for _, l := range s.Names() {
		if l != layer && !g.DependsOn(layer, l) {
			continue
		}
		for _, h := range hooks[l] {
			m := model(h)
			if len(m.canFail()) > 0 {
				continue
			}
			for _, c := range m.exploreRun.called {
				if len(c) >= 3 && c[0] == secretCheck && c[1] == ns && c[2] == name && (key == "" || slices.ContainsFunc(c[3:], func(k string) bool {
					return strings.TrimSuffix(k, "?") == key // KEY?: may be empty
				})) {
					return true
				}
			}
		}
	}
	return false
}

// secretCheck is the function of scripts/lib/kube.sh that checks a Secret
// and its keys: check_secret NAMESPACE NAME KEY...
const secretCheck = "check_secret"

type dnsRef struct{ host, svc, ns string }

// dnsRefs finds Service DNS names in text: <svc>.<ns>.svc[.<domain>] with
// any namespace, and <svc>.<ns> when ns is one of the given namespaces.
func dnsRefs(text string, namespaces map[string]bool) []dnsRef {
	var out []dnsRef
	for _, a := range addresses(text, namespaces) {
		out = append(out, a.dnsRef)
	}
	return out
}

// address is a Service DNS name in a text, with the port written with it.
type address struct {
	dnsRef
	port int32 // after the host (host:port), else the URL scheme's default; 0: none
}

var (
	hostToken = regexp.MustCompile(`[A-Za-z0-9._-]+`)
	// schemePorts are the default ports of URL schemes.
	schemePorts = map[string]int32{"http": 80, "https": 443, "ws": 80, "wss": 443, "postgres": 5432, "postgresql": 5432}
)

// addresses finds Service DNS names in text (as dnsRefs does) with their
// ports: host:port, or the default port of the URL's scheme.
func addresses(text string, namespaces map[string]bool) []address {
	var out []address
	for _, loc := range hostToken.FindAllStringIndex(text, -1) {
		start, end := loc[0], loc[1]
		for start < end && text[start] == '.' {
			start++
		}
		for end > start && text[end-1] == '.' {
			end--
		}
		t := text[start:end]
		if t == "" || strings.Contains(t, "_") || t != strings.ToLower(t) {
			continue
		}
		var d *dnsRef
		labels := strings.Split(t, ".")
		for i, l := range labels {
			if l == "svc" && i >= 2 && validLabel(labels[i-2]) && validLabel(labels[i-1]) {
				d = &dnsRef{host: t, svc: labels[i-2], ns: labels[i-1]}
				break
			}
		}
		if d == nil && len(labels) == 2 && namespaces[labels[1]] && validLabel(labels[0]) {
			d = &dnsRef{host: t, svc: labels[0], ns: labels[1]}
		}
		if d == nil {
			continue
		}
		a := address{dnsRef: *d}
		if rest := text[end:]; strings.HasPrefix(rest, ":") {
			n := 1
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			if p, err := strconv.ParseInt(rest[1:n], 10, 32); err == nil && n > 1 {
				a.port = int32(p)
			}
		}
		if a.port == 0 {
			// scheme://[user[:password]@]host
			before := text[:start]
			if k := strings.LastIndex(before, "://"); k >= 0 && !strings.ContainsAny(before[k+3:], " \t\n/\"'") {
				sch := before[:k]
				if m := strings.LastIndexFunc(sch, func(r rune) bool {
					return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')
				}); m >= 0 {
					sch = sch[m+1:]
				}
				a.port = schemePorts[strings.ToLower(sch)]
			}
		}
		out = append(out, a)
	}
	return out
}

// svcRef is one Service address a workload's pods use.
type svcRef struct {
	address
	where string // field path of the value, e.g. spec.template.spec.containers[app].env[DB_HOST]
	file  string // where the value is written: the workload's template, or the ConfigMap's or Secret's
	src   objKey // the ConfigMap or Secret the value is in (zero: the workload's own spec)
}

// hostSuffixes end the names of environment variables that hold a host
// whose port is in a sibling variable.
var hostSuffixes = []string{"HOSTNAME", "HOST", "ADDRESS", "ADDR", "SERVER", "SERVICE", "URL", "ENDPOINT", "URI"}

// portVar finds the port of a host variable in its sibling variables:
// DB_HOST → DB_PORT, PGHOST → PGPORT, HOST → PORT, REDIS → REDIS_PORT
// (the same in lower case).
func portVar(name string, env map[string]string) int32 {
	up := strings.ToUpper(name)
	cands := []string{up + "_PORT"}
	for _, suf := range hostSuffixes {
		if base, ok := strings.CutSuffix(up, suf); ok {
			cands = append(cands, base+"PORT")
			if base != "" && !strings.HasSuffix(base, "_") {
				cands = append(cands, base+"_PORT")
			}
		}
	}
	for _, c := range cands {
		for _, k := range []string{c, strings.ToLower(c)} {
			if v, ok := env[k]; ok {
				if p, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err == nil {
					return int32(p)
				}
			}
		}
	}
	return 0
}

// dataOf is the data of a ConfigMap or Secret (Secret values decoded).
func dataOf(o *Object) map[string]string {
	switch t := typed(o).(type) {
	case *corev1.ConfigMap:
		return t.Data
	case *corev1.Secret:
		m := map[string]string{}
		for k, v := range t.Data {
			m[k] = string(v)
		}
		for k, v := range t.StringData {
			m[k] = v
		}
		return m
	}
	return nil
}

// serviceRefs lists every Service address a workload's pods are given:
//
//   - environment variables of every container (init containers too):
//     literal values, values from ConfigMap and Secret keys, and every key
//     of an envFrom ConfigMap or Secret; a host without a port takes it
//     from its sibling port variable (DB_HOST with DB_PORT);
//   - every key of the ConfigMaps and Secrets mounted as volumes;
//   - the command and args of every container;
//   - the host of httpGet and tcpSocket probes.
//
// created are the objects of the profile (for the ConfigMaps and Secrets
// read); namespaces the platform namespaces (for <svc>.<ns> names).
func serviceRefs(w workload, created map[objKey]*Object, namespaces map[string]bool) []svcRef {
	var out []svcRef
	ns := w.obj.Namespace
	lookup := func(kind, name string) *Object { return created[objKey{kind, ns, name}] }
	add := func(text, where string, src *Object, port func() int32) {
		r := svcRef{where: where, file: w.obj.Source}
		if src != nil {
			r.file, r.src = src.Source, objKey{src.Kind, src.Namespace, src.Name}
		}
		for _, a := range addresses(text, namespaces) {
			if a.port == 0 && port != nil {
				a.port = port()
			}
			r.address = a
			out = append(out, r)
		}
	}
	for _, c := range w.containers() {
		type envVal struct {
			name, value, where string
			src                *Object
		}
		var vals []envVal
		env := map[string]string{}
		for i, ef := range c.c.EnvFrom {
			kind, name := "ConfigMap", ""
			switch {
			case ef.ConfigMapRef != nil:
				name = ef.ConfigMapRef.Name
			case ef.SecretRef != nil:
				kind, name = "Secret", ef.SecretRef.Name
			}
			o := lookup(kind, name)
			if o == nil {
				continue
			}
			data := dataOf(o)
			for _, k := range sortedMapKeys(data) {
				n := ef.Prefix + k
				vals = append(vals, envVal{n, data[k], fmt.Sprintf("%s.envFrom[%d]: %s %s data.%s", c.path, i, kind, name, k), o})
				env[n] = data[k]
			}
		}
		for _, e := range c.c.Env {
			where := c.path + ".env[" + e.Name + "]"
			v := envVal{e.Name, e.Value, where, nil}
			if vf := e.ValueFrom; vf != nil {
				var o *Object
				var key string
				switch {
				case vf.ConfigMapKeyRef != nil:
					o, key = lookup("ConfigMap", vf.ConfigMapKeyRef.Name), vf.ConfigMapKeyRef.Key
				case vf.SecretKeyRef != nil:
					o, key = lookup("Secret", vf.SecretKeyRef.Name), vf.SecretKeyRef.Key
				}
				if o == nil {
					continue
				}
				v = envVal{e.Name, dataOf(o)[key], fmt.Sprintf("%s: %s %s data.%s", where, o.Kind, o.Name, key), o}
			}
			vals = append(vals, v)
			env[e.Name] = v.value
		}
		for _, v := range vals {
			add(v.value, v.where, v.src, func() int32 { return portVar(v.name, env) })
		}
		if len(c.c.Command) > 0 {
			add(strings.Join(c.c.Command, " "), c.path+".command", nil, nil)
		}
		if len(c.c.Args) > 0 {
			add(strings.Join(c.c.Args, " "), c.path+".args", nil, nil)
		}
		for _, pr := range []struct {
			name string
			p    *corev1.Probe
		}{{"startupProbe", c.c.StartupProbe}, {"readinessProbe", c.c.ReadinessProbe}, {"livenessProbe", c.c.LivenessProbe}} {
			if pr.p == nil {
				continue
			}
			var host string
			var port int32
			switch {
			case pr.p.HTTPGet != nil:
				host, port = pr.p.HTTPGet.Host, pr.p.HTTPGet.Port.IntVal
			case pr.p.TCPSocket != nil:
				host, port = pr.p.TCPSocket.Host, pr.p.TCPSocket.Port.IntVal
			}
			if host != "" {
				add(host, c.path+"."+pr.name+".host", nil, func() int32 { return port })
			}
		}
	}
	for _, r := range podRefs(w) {
		if !strings.Contains(r.path, ".volumes[") || (r.kind != "ConfigMap" && r.kind != "Secret") {
			continue
		}
		o := lookup(r.kind, r.name)
		if o == nil {
			continue
		}
		data := dataOf(o)
		for _, k := range sortedMapKeys(data) {
			if r.key == "" || r.key == k {
				add(data[k], fmt.Sprintf("%s: %s %s data.%s", r.path, r.kind, r.name, k), o, nil)
			}
		}
	}
	return out
}

// servicesOf indexes the Services of a profile's objects, and lists the
// namespaces created.
func servicesOf(objs []*Object) (map[objKey]*Object, map[string]bool) {
	services := map[objKey]*Object{}
	nsNames := map[string]bool{}
	for _, o := range objs {
		switch o.Kind {
		case "Service":
			services[objKey{"Service", o.Namespace, o.Name}] = o
		case "Namespace":
			nsNames[o.Name] = true
		}
	}
	return services, nsNames
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// call is one Service reference of a workload, resolved to a workload the
// Service selects and the container ports it may reach there.
type call struct {
	ref   svcRef
	from  workload
	to    workload
	ports []int32
}

// calls resolves the Service references of every workload of one
// profile's objects: the Service's selector picks the destination
// workloads (never the caller itself), the reference's port picks the
// Service ports (every port when it gives none), their targetPort the
// container ports. A port the Service does not have is a problem.
//
// An address in a ConfigMap or Secret that the destination reads too is
// the destination's own configuration (Kratos' base URLs in the config
// file its migration Job mounts as well), not a call.
func calls(objs []*Object) ([]call, Problems) {
	var out []call
	var ps Problems
	created := map[objKey]*Object{}
	for _, o := range objs {
		created[objKey{o.Kind, o.Namespace, o.Name}] = o
	}
	services, nsNames := servicesOf(objs)
	ws := workloads(objs)
	for _, w := range ws {
		for _, r := range serviceRefs(w, created, nsNames) {
			svcObj, ok := services[objKey{"Service", r.ns, r.svc}]
			if !ok {
				continue // References reports it
			}
			svc, ok := typed(svcObj).(*corev1.Service)
			if !ok || len(svc.Spec.Selector) == 0 {
				continue
			}
			var sports []corev1.ServicePort
			for _, sp := range svc.Spec.Ports {
				if r.port == 0 || sp.Port == r.port {
					sports = append(sports, sp)
				}
			}
			if len(sports) == 0 {
				var have []string
				for _, sp := range svc.Spec.Ports {
					have = append(have, strconv.Itoa(int(sp.Port)))
				}
				ps = append(ps, Problem{File: r.file, Where: w.obj.Desc(), Profiles: profiles(w.obj.Profile),
					Msg: fmt.Sprintf("%s: %q port %d: Service %s/%s has no such port (ports %s)", r.where, r.host, r.port, r.ns, r.svc, strings.Join(have, ", "))})
				continue
			}
			sel := labels.SelectorFromSet(svc.Spec.Selector)
			for _, d := range ws {
				if d.obj == w.obj || d.obj.Namespace != r.ns || !sel.Matches(labels.Set(d.labels)) || reads(d, r.src) {
					continue
				}
				c := call{ref: r, from: w, to: d}
				for _, sp := range sports {
					tp := sp.TargetPort
					switch {
					case tp.Type == intstr.String:
						for _, ctr := range d.spec.Containers {
							for _, cp := range ctr.Ports {
								if cp.Name == tp.StrVal {
									c.ports = append(c.ports, cp.ContainerPort)
								}
							}
						}
					case tp.IntVal != 0:
						c.ports = append(c.ports, tp.IntVal)
					default:
						c.ports = append(c.ports, sp.Port)
					}
				}
				out = append(out, c)
			}
		}
	}
	return out, ps
}

// endpointOf is the flow-table endpoint of a workload's pods.
func endpointOf(w workload) Endpoint {
	return Endpoint{Namespace: w.obj.Namespace, App: w.labels["app.kubernetes.io/name"], Component: w.labels["app.kubernetes.io/component"]}
}

// flowCalls checks one profile's calls against the flow table: each call
// needs a flow from its workload to the destination on one of its ports.
// used collects, per flow (by index), the ports some call uses.
func flowCalls(t Table, profile string, objs []*Object, used map[int]map[int32]bool) Problems {
	cs, ps := calls(objs)
	for _, c := range cs {
		ok := false
		for i, f := range t.Flows {
			if !f.From.matches(c.from.obj.Namespace, c.from.labels) || !f.To.matches(c.to.obj.Namespace, c.to.labels) {
				continue
			}
			for _, p := range c.ports {
				if slices.Contains(f.Ports, p) {
					ok = true
					if used[i] == nil {
						used[i] = map[int32]bool{}
					}
					used[i][p] = true
				}
			}
		}
		if ok {
			continue
		}
		want := Flow{From: endpointOf(c.from), To: endpointOf(c.to), Ports: c.ports}
		ps = append(ps, Problem{File: c.ref.file, Where: c.from.obj.Desc(), Profiles: profiles(profile),
			Msg: fmt.Sprintf("%s: %q names Service %s/%s, served by %s on container port %s, but the flow table (%s) has no such flow: the default-deny NetworkPolicies cut this call; add %s",
				c.ref.where, c.ref.host, c.ref.ns, c.ref.svc, c.to.obj.ID(), joinPorts(c.ports), FlowFile, want)})
	}
	return ps
}

func joinPorts(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, " or ")
}

// aliasExists reports whether some profile renders a Service name in ns.
func aliasExists(order []string, groups map[string][]*Object, ns, name string) bool {
	for _, p := range order {
		for _, o := range groups[p] {
			if o.Kind == "Service" && o.Namespace == ns && o.Name == name {
				return true
			}
		}
	}
	return false
}

// unusedFlows reports the flows and ports that no call uses in any
// profile, unless marked usedFrom (whose mark must hold). A flow whose
// endpoints select no workload is left to flowsOf.
func unusedFlows(t Table, order []string, groups map[string][]*Object, used map[int]map[int32]bool) Problems {
	var ps Problems
	for i, f := range t.Flows {
		var srcs, dsts []workload
		for _, p := range order {
			for _, w := range workloads(groups[p]) {
				if f.From.matches(w.obj.Namespace, w.labels) {
					srcs = append(srcs, w)
				}
				if f.To.matches(w.obj.Namespace, w.labels) {
					dsts = append(dsts, w)
				}
			}
		}
		if len(srcs) == 0 || len(dsts) == 0 {
			continue
		}
		if f.UsedFrom != "" {
			if _, ok := UsedFromValues[f.UsedFrom]; !ok {
				ps = append(ps, Problem{File: FlowFile, Where: f.String(), Msg: fmt.Sprintf("usedFrom: %q is not one of %s", f.UsedFrom, strings.Join(sortedMapKeys(UsedFromValues), ", "))})
				continue
			}
			if f.UsedFrom == "alt-code" {
				if !aliasExists(order, groups, f.From.Namespace, f.To.App) {
					ps = append(ps, Problem{File: FlowFile, Where: f.String(), Msg: fmt.Sprintf("usedFrom: alt-code, but no Service %s/%s resolves the bare name %s for the caller", f.From.Namespace, f.To.App, f.To.App)})
				}
				continue
			}
			for _, port := range f.Ports {
				if !slices.ContainsFunc(dsts, func(d workload) bool { return scraped(d, port) }) {
					ps = append(ps, Problem{File: FlowFile, Where: f.String(), Msg: fmt.Sprintf("usedFrom: monitoring, but no pod of %s is scraped on port %d (annotations prometheus.io/scrape \"true\" and prometheus.io/port \"%d\")", f.To, port, port)})
				}
			}
			continue
		}
		for _, port := range f.Ports {
			if used[i][port] {
				continue
			}
			ps = append(ps, Problem{File: FlowFile, Where: f.String(),
				Msg: fmt.Sprintf("port %d: no workload of %s names a Service of %s on it in any profile (env, host and port variables, URLs, ConfigMaps and Secrets it reads, command, probes): an opening in the default-deny that nothing uses; drop it, or mark the flow usedFrom (%s) when its caller finds the destination another way",
					port, f.From, f.To, strings.Join(sortedMapKeys(UsedFromValues), ", "))})
		}
	}
	return ps
}

// scraped reports whether Prometheus scrapes a workload's pods on port.
func scraped(w workload, port int32) bool {
	return w.annotations["prometheus.io/scrape"] == "true" && w.annotations["prometheus.io/port"] == strconv.Itoa(int(port))
}

// reads reports whether a workload reads the ConfigMap or Secret k.
func reads(w workload, k objKey) bool {
	if k.kind == "" || k.ns != w.obj.Namespace {
		return false
	}
	return slices.ContainsFunc(podRefs(w), func(r ref) bool { return r.kind == k.kind && r.name == k.name })
}

// certificateSecret is spec.secretName of a cert-manager Certificate, or "".
func certificateSecret(o *Object) string {
	if o.Kind != "Certificate" || !strings.HasPrefix(o.APIVersion, "cert-manager.io/") {
		return ""
	}
	spec, _ := o.Doc["spec"].(map[string]any)
	name, _ := spec["secretName"].(string)
	return name
}
