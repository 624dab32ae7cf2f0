package check

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

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
//     a layer it depends on, which names the Secret and the key; and when
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
		hooks := hookTexts(s, p)

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
					ps = append(ps, w.obj.problem("%s: %s is not created in this profile and no hook of layer %s (or a layer it depends on) verifies it; add a before-hook that checks the Secret and its keys",
						r.path, what, w.obj.Layer))
				}
			}
		}

		// DNS names of Services.
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
		checkDNS := func(consumer *Object, where, text string) {
			for _, d := range dnsRefs(text, nsNames) {
				if d.ns == "default" && d.svc == "kubernetes" {
					continue
				}
				svc, ok := services[objKey{"Service", d.ns, d.svc}]
				switch {
				case ok:
					if !needs(consumer.Layer, svc.Layer) {
						ps = append(ps, consumer.problem("%s: %q names Service %s/%s of layer %s (release %s), which layer %s does not depend on in the Mage graph; add the dependency (magefiles) or drop the reference",
							where, d.host, d.ns, d.svc, svc.Layer, svc.Release, consumer.Layer))
					}
				case skippedNS[d.ns] != "":
					notes = append(notes, Note{Check: "references", What: fmt.Sprintf("%q in %s", d.host, consumer.Desc()), Why: skippedNS[d.ns]})
				default:
					ps = append(ps, consumer.problem("%s: %q names Service %s/%s, which no release creates", where, d.host, d.ns, d.svc))
				}
			}
		}
		for _, w := range workloads(objs) {
			for _, c := range w.containers() {
				for _, e := range c.c.Env {
					if e.Value != "" {
						checkDNS(w.obj, c.path+".env["+e.Name+"]", e.Value)
					}
				}
			}
			for _, r := range podRefs(w) {
				if r.kind != "ConfigMap" {
					continue
				}
				cm, ok := created[objKey{"ConfigMap", w.obj.Namespace, r.name}]
				if !ok {
					continue
				}
				data := configMapData(cm)
				for _, k := range sortedMapKeys(data) {
					if r.key == "" || r.key == k {
						checkDNS(w.obj, fmt.Sprintf("%s: ConfigMap %s data.%s", r.path, r.name, k), data[k])
					}
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

// hookTexts are the commands of every layer's before and after hooks under
// a profile, one string per hook, by layer.
func hookTexts(s *stack.Stack, profile string) map[string][]string {
	m := map[string][]string{}
	for _, l := range s.Layers {
		v, err := l.View(profile, nil)
		if err != nil {
			continue
		}
		for _, h := range append(append([]stack.Hook{}, v.Before...), v.After...) {
			m[l.Name] = append(m[l.Name], strings.Join(h.Command, " "))
		}
	}
	return m
}

// verified reports whether a hook of layer (or of a layer it depends on)
// names the namespace's Secret and the key.
func verified(hooks map[string][]string, s *stack.Stack, g *stack.Graph, layer, ns, name, key string) bool {
	for _, l := range s.Names() {
		if l != layer && !g.DependsOn(layer, l) {
			continue
		}
		for _, h := range hooks[l] {
			if containsWord(h, name) && containsWord(h, ns) && (key == "" || containsWord(h, key)) {
				return true
			}
		}
	}
	return false
}

// containsWord reports whether w occurs in s delimited by characters other
// than letters, digits, '-' and '_' (a '.' delimits: jsonpath {.data.key}).
func containsWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(w)
		if (start == 0 || !nameChar(s[start-1])) && (end == len(s) || !nameChar(s[end])) {
			return true
		}
		i = start + 1
	}
}

func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

type dnsRef struct{ host, svc, ns string }

// dnsRefs finds Service DNS names in text: <svc>.<ns>.svc[.<domain>] with
// any namespace, and <svc>.<ns> when ns is one of the given namespaces.
func dnsRefs(text string, namespaces map[string]bool) []dnsRef {
	var out []dnsRef
	tokens := strings.FieldsFunc(text, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_')
	})
	for _, t := range tokens {
		t = strings.Trim(t, ".")
		if strings.Contains(t, "_") || t != strings.ToLower(t) {
			continue
		}
		labels := strings.Split(t, ".")
		for i, l := range labels {
			if l == "svc" && i >= 2 && validLabel(labels[i-2]) && validLabel(labels[i-1]) {
				out = append(out, dnsRef{host: t, svc: labels[i-2], ns: labels[i-1]})
				break
			}
		}
		if len(labels) == 2 && namespaces[labels[1]] && validLabel(labels[0]) {
			out = append(out, dnsRef{host: t, svc: labels[0], ns: labels[1]})
		}
	}
	return out
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
