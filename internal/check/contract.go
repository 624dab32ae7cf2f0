package check

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/alt-platform/orchestration/internal/contract"
	"github.com/alt-platform/orchestration/internal/stack"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Contract holds every profile's rendered objects and Skaffold artifacts to
// Alt's contract (docs/alt-contract.yaml): each first-party image is built
// from the context and Dockerfile Alt's code has, with its build args; each
// container running it gets the environment its code requires, the command
// it must run, the database role and Secret it connects with, only the
// ports it listens on, and probes only on those ports and its health
// paths; a schema migration runs only after a roles Job made the roles it
// needs; nginx-external routes each path where Alt's routes go and to a
// Service port that reaches the service.
func Contract(c *contract.Contract, s *stack.Stack, objs []*Object) error {
	var ps Problems
	profiles, byProf := byProfile(objs)
	for _, p := range profiles {
		ps = append(ps, contractArtifacts(c, s, p)...)
		ps = append(ps, contractWorkloads(c, byProf[p])...)
		ps = append(ps, contractRoutes(c, s, byProf[p])...)
	}
	return ps.Err()
}

// contractArtifacts checks the Skaffold artifacts of one profile.
func contractArtifacts(c *contract.Contract, s *stack.Stack, profile string) Problems {
	var ps Problems
	built := map[string]bool{}
	for _, l := range s.Layers {
		v, err := l.View(profile, nil)
		if err != nil {
			continue
		}
		for _, a := range v.Artifacts {
			built[a.Image] = true
			field := fmt.Sprintf("build.artifacts[%s]", a.Image)
			prob := func(format string, args ...any) {
				ps = append(ps, Problem{File: l.File, Where: field, Msg: fmt.Sprintf(format, args...), Profiles: []string{profile}})
			}
			svc := c.ServiceByImage(a.Image)
			if svc == nil {
				prob("image %s is not in %s: every first-party image is one of Alt's, with the facts its code requires", a.Image, contract.File)
				continue
			}
			if svc.Layer != "" && svc.Layer != l.Name {
				prob("built in layer %s; %s has it in layer %s", l.Name, contract.File, svc.Layer)
			}
			if want := path.Join(stack.SrcLink, svc.Context); path.Clean(a.Context) != path.Join("../..", want) {
				prob("context %s; Alt builds it from %s (%s): want ../../%s", a.Context, svc.Context, svc.Source, want)
			}
			if a.Dockerfile != svc.Dockerfile {
				prob("dockerfile %s; Alt's is %s/%s (%s)", a.Dockerfile, svc.Context, svc.Dockerfile, svc.Source)
			}
			for _, b := range svc.BuildArgs {
				if v, ok := a.BuildArgs[b.Name]; !ok || v == "" {
					prob("docker.buildArgs.%s is not set; Alt bakes it into the image at build time (%s)", b.Name, b.Source)
				}
			}
		}
	}
	for _, svc := range c.Services {
		if !built[svc.Image] {
			ps = append(ps, Problem{File: contract.File, Where: "service " + svc.Release,
				Msg: fmt.Sprintf("no layer builds image %s under this profile", svc.Image), Profiles: []string{profile}})
		}
	}
	return ps
}

// imageRepo is an image reference without its tag and digest.
func imageRepo(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// contractWorkloads checks every container that runs a first-party image.
func contractWorkloads(c *contract.Contract, objs []*Object) Problems {
	var ps Problems
	secrets := renderedSecrets(objs)
	ran := map[string]bool{}
	migrated := map[string]bool{}
	for _, w := range workloads(objs) {
		for _, ct := range w.containers() {
			svc := c.ServiceByImage(imageRepo(ct.c.Image))
			if svc == nil {
				continue
			}
			prob := func(format string, args ...any) {
				ps = append(ps, w.obj.problem("%s: "+format, append([]any{ct.path}, args...)...))
			}
			cmd := append(slices.Clone(ct.c.Command), ct.c.Args...)
			if len(svc.Migrate) > 0 && slices.Equal(cmd, svc.Migrate) {
				migrated[svc.Release] = true
				contractEnv(svc, ct.c, w.obj.Namespace, secrets, prob)
				continue
			}
			ran[svc.Release] = true
			if w.obj.Release != svc.Release {
				prob("runs %s, which %s gives to release %s", svc.Image, contract.File, svc.Release)
			}
			if len(svc.Command) > 0 && !slices.Equal(cmd, svc.Command) {
				prob("runs %q; Alt's image must run %q (%s)", cmd, svc.Command, svc.CommandSource)
			}
			contractEnv(svc, ct.c, w.obj.Namespace, secrets, prob)
			contractPorts(svc, ct.c, w.longRunning, prob)
			if len(svc.RolesBefore) > 0 {
				ps = append(ps, rolesBefore(svc, w, objs)...)
			}
			if why := w.annotations[NoProbesAnnotation]; why != "" && len(svc.Ports) > 0 {
				prob("pod annotation %s=%q, but Alt's code listens on %s: probe it", NoProbesAnnotation, why, portList(svc.Ports))
			}
		}
	}
	for _, svc := range c.Services {
		if !ran[svc.Release] && len(objs) > 0 {
			ps = append(ps, Problem{File: contract.File, Where: "service " + svc.Release,
				Msg: fmt.Sprintf("no rendered container runs image %s", svc.Image), Profiles: profiles(objs[0].Profile)})
		}
		if len(svc.Migrate) > 0 && !migrated[svc.Release] && len(objs) > 0 {
			ps = append(ps, Problem{File: contract.File, Where: "service " + svc.Release,
				Msg: fmt.Sprintf("no rendered container runs its migration %q (%s)", svc.Migrate, svc.MigrateSource), Profiles: profiles(objs[0].Profile)})
		}
	}
	return ps
}

// hookWeight is an object's helm.sh/hook-weight (0 when unset) and whether
// it is a Helm hook at all.
func hookWeight(o *Object) (int, bool) {
	m, ok := typed(o).(metav1.Object)
	if !ok {
		return 0, false
	}
	ann := m.GetAnnotations()
	if _, ok := ann["helm.sh/hook"]; !ok {
		return 0, false
	}
	n, _ := strconv.Atoi(ann["helm.sh/hook-weight"])
	return n, true
}

// rolesBefore checks that the release of a migration Job runs, as an
// earlier hook, a roles Job whose roles.sql makes every role the
// migration needs first.
func rolesBefore(svc *contract.Service, mig workload, objs []*Object) Problems {
	migWeight, isHook := hookWeight(mig.obj)
	var sql string
	var rolesJob *Object
	for _, o := range objs {
		if o.Release != mig.obj.Release || o.Namespace != mig.obj.Namespace {
			continue
		}
		if cm, ok := typed(o).(*corev1.ConfigMap); ok && cm.Data["roles.sql"] != "" {
			sql = cm.Data["roles.sql"]
			for _, w := range workloads(objs) {
				if w.obj.Release != o.Release || w.obj.Kind != "Job" {
					continue
				}
				for _, v := range w.spec.Volumes {
					if v.ConfigMap != nil && v.ConfigMap.Name == o.Name {
						rolesJob = w.obj
					}
				}
			}
		}
	}
	if rolesJob == nil {
		return Problems{mig.obj.problem("no roles Job of release %s makes the roles this migration needs first (%s)", mig.obj.Release, factNames(svc.RolesBefore))}
	}
	var ps Problems
	if w, hook := hookWeight(rolesJob); !isHook || !hook || w >= migWeight {
		ps = append(ps, rolesJob.problem("runs at hook weight %d, not before the migration Job %s (weight %d): the roles must exist before it", w, mig.obj.Name, migWeight))
	}
	for _, r := range svc.RolesBefore {
		if !strings.Contains(sql, fmt.Sprintf("CREATE ROLE %q", r.Name)) {
			ps = append(ps, rolesJob.problem("roles.sql does not make role %s, which the migration needs first (%s)", r.Name, r.Source))
		}
	}
	return ps
}

func factNames(fs []contract.Fact) string {
	var n []string
	for _, f := range fs {
		n = append(n, f.Name)
	}
	return strings.Join(n, ", ")
}

// renderedSecrets maps "namespace/name" to the decoded data of every
// rendered Secret (dev renders them; staging and prod provide them).
func renderedSecrets(objs []*Object) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, o := range objs {
		sec, ok := typed(o).(*corev1.Secret)
		if !ok {
			continue
		}
		data := map[string]string{}
		for k, v := range sec.Data {
			data[k] = string(v)
		}
		for k, v := range sec.StringData {
			data[k] = v
		}
		m[o.Namespace+"/"+o.Name] = data
	}
	return m
}

// contractEnv checks the container's environment and database credentials.
func contractEnv(svc *contract.Service, c *corev1.Container, ns string, secrets map[string]map[string]string, prob func(string, ...any)) {
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, want := range svc.Env {
		e, ok := env[want.Name]
		if !ok || (e.Value == "" && e.ValueFrom == nil) {
			prob("env %s is not set; Alt's code requires it (%s)", want.Name, want.Source)
		}
	}
	for _, want := range svc.Secrets {
		name, key, _ := strings.Cut(want.Path, "/")
		ref := env[want.Name].ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != name || ref.SecretKeyRef.Key != key {
			prob("env %s must come from Secret %s key %s (%s)", want.Name, name, key, want.Source)
		}
	}
	db := svc.Database
	if db == nil {
		return
	}
	for _, v := range []struct{ name, key string }{{db.UserVar, "username"}, {db.PasswordVar, "password"}} {
		e := env[v.name]
		ref := e.ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != db.Secret || ref.SecretKeyRef.Key != v.key {
			prob("env %s must come from Secret %s key %s (role %s, %s)", v.name, db.Secret, v.key, db.User, db.Source)
		}
	}
	if data, ok := secrets[ns+"/"+db.Secret]; ok && data["username"] != db.User {
		prob("Secret %s/%s holds username %q; %s connects as %s (%s)", ns, db.Secret, data["username"], svc.Release, db.User, db.Source)
	}
}

// contractPorts checks the container's ports and probes.
func contractPorts(svc *contract.Service, c *corev1.Container, longRunning bool, prob func(string, ...any)) {
	listens := map[int]bool{}
	for _, p := range svc.Ports {
		listens[p.Port] = true
	}
	named := map[string]int{}
	for _, p := range c.Ports {
		named[p.Name] = int(p.ContainerPort)
		if !listens[int(p.ContainerPort)] {
			prob("containerPort %d: Alt's code listens on %s", p.ContainerPort, portList(svc.Ports))
		}
	}
	if longRunning {
		for _, p := range svc.Ports {
			if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return int(cp.ContainerPort) == p.Port }) {
				prob("no containerPort %d, where Alt's code listens (%s)", p.Port, p.Source)
			}
		}
	}
	resolve := func(p intstr.IntOrString) int {
		if p.Type == intstr.String {
			return named[p.StrVal]
		}
		return p.IntValue()
	}
	for _, pr := range []struct {
		kind string
		p    *corev1.Probe
	}{{"startupProbe", c.StartupProbe}, {"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}} {
		if pr.p == nil {
			continue
		}
		switch {
		case pr.p.HTTPGet != nil:
			port := resolve(pr.p.HTTPGet.Port)
			if !slices.ContainsFunc(svc.Health, func(h contract.Fact) bool { return h.Port == port && h.Path == pr.p.HTTPGet.Path }) {
				prob("%s GET %s on port %d: Alt's code serves health on %s", pr.kind, pr.p.HTTPGet.Path, port, healthList(svc))
			}
		case pr.p.TCPSocket != nil:
			if port := resolve(pr.p.TCPSocket.Port); !listens[port] {
				prob("%s connects to port %d: Alt's code listens on %s", pr.kind, port, portList(svc.Ports))
			}
		case pr.p.GRPC != nil:
			prob("%s uses gRPC: Alt's code serves none", pr.kind)
		}
	}
	if len(svc.Health) > 0 && (c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil) && longRunning {
		prob("readinessProbe is not an HTTP GET of a health path Alt's code serves (%s)", healthList(svc))
	}
}

func portList(ps []contract.Fact) string {
	if len(ps) == 0 {
		return "no port at all"
	}
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%d (%s)", p.Port, p.Source))
	}
	return strings.Join(s, ", ")
}

func healthList(svc *contract.Service) string {
	if len(svc.Health) == 0 {
		return "no path at all"
	}
	var s []string
	for _, h := range svc.Health {
		s = append(s, fmt.Sprintf("GET %s on %d (%s)", h.Path, h.Port, h.Source))
	}
	return strings.Join(s, ", ")
}

// NginxRelease is the release of the platform's entry point.
const NginxRelease = "nginx-external"

var (
	locationRe  = regexp.MustCompile(`(?m)^\s*location\s+(=\s+)?(\S+)\s*\{`)
	proxyPassRe = regexp.MustCompile(`^\s*proxy_pass\s+http://([^/;\s]+)(/[^;\s]*)?;`)
)

// location is one location block of nginx.conf: its path and where it
// proxies (empty: answered by nginx itself).
type location struct {
	path, exact, upstream, to string
}

// nginxLocations reads the location blocks of an nginx.conf, in order.
func nginxLocations(conf string) []location {
	var ls []location
	lines := strings.Split(conf, "\n")
	for i, line := range lines {
		m := locationRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		l := location{path: m[2], exact: strings.TrimSpace(m[1])}
		for _, body := range lines[i+1:] {
			if strings.TrimSpace(body) == "}" || locationRe.MatchString(body) {
				break
			}
			if pm := proxyPassRe.FindStringSubmatch(body); pm != nil {
				l.upstream, l.to = pm[1], pm[2]
			}
		}
		ls = append(ls, l)
	}
	return ls
}

// nginxServer is one server block of nginx.conf: its listen lines and its
// text.
type nginxServer struct {
	listen string
	text   string
}

var (
	serverRe   = regexp.MustCompile(`^\s*server\s*\{`)
	listenRe   = regexp.MustCompile(`^\s*listen\s+([^;]+);`)
	redirectRe = regexp.MustCompile(`^\s*return\s+30[1278]\s+https://`)
)

// nginxServers splits an nginx.conf into its server blocks (by braces).
func nginxServers(conf string) []nginxServer {
	var out []nginxServer
	lines := strings.Split(conf, "\n")
	for i := 0; i < len(lines); i++ {
		if !serverRe.MatchString(lines[i]) {
			continue
		}
		depth, j := 0, i
		var listen []string
		for ; j < len(lines); j++ {
			depth += strings.Count(lines[j], "{") - strings.Count(lines[j], "}")
			if m := listenRe.FindStringSubmatch(lines[j]); m != nil {
				listen = append(listen, m[1])
			}
			if depth == 0 {
				break
			}
		}
		out = append(out, nginxServer{listen: strings.Join(listen, ", "), text: strings.Join(lines[i:min(j+1, len(lines))], "\n")})
		i = j
	}
	return out
}

// redirectsToHTTPS says whether the server answers `location /` with a
// redirect to https:// and proxies nothing: the plain-HTTP server of an
// entry that serves its routes over HTTPS.
func (sv nginxServer) redirectsToHTTPS() bool {
	redirect := false
	lines := strings.Split(sv.text, "\n")
	for _, l := range nginxLocations(sv.text) {
		if l.upstream != "" {
			return false
		}
	}
	in := false
	for _, line := range lines {
		if m := locationRe.FindStringSubmatch(line); m != nil {
			in = m[2] == "/" && m[1] == ""
			continue
		}
		if in && redirectRe.MatchString(line) {
			redirect = true
		}
	}
	return redirect
}

// contractRoutes checks nginx-external's configuration against the routes:
// every server block (plain HTTP and, where cert-manager is deployed,
// HTTPS) answers the entry's health path itself and routes every path
// where Alt routes it, or (plain HTTP only) redirects it to HTTPS.
func contractRoutes(c *contract.Contract, s *stack.Stack, objs []*Object) Problems {
	var ps Problems
	var conf *Object
	var text string
	for _, o := range objs {
		if cm, ok := typed(o).(*corev1.ConfigMap); ok && o.Release == NginxRelease && cm.Data["nginx.conf"] != "" {
			conf, text = o, cm.Data["nginx.conf"]
		}
	}
	if conf == nil {
		if len(objs) > 0 {
			ps = append(ps, Problem{File: contract.File, Where: "routes", Msg: "no rendered ConfigMap of release " + NginxRelease + " holds an nginx.conf", Profiles: profiles(objs[0].Profile)})
		}
		return ps
	}
	servers := nginxServers(text)
	if len(servers) == 0 {
		return append(ps, conf.problem("nginx.conf has no server block"))
	}
	namespaceOf := releaseNamespaces(s, conf.Profile)
	reached := map[string]bool{} // routes whose Service ports were checked
	for _, sv := range servers {
		prob := func(format string, a ...any) {
			ps = append(ps, conf.problem("server (listen %s): "+format, append([]any{sv.listen}, a...)...))
		}
		locs := map[string]location{}
		for _, l := range nginxLocations(sv.text) {
			locs[l.path] = l
		}
		if l, ok := locs[c.EntryHealth.Path]; !ok || l.upstream != "" {
			prob("no location %s answered by nginx itself (%s)", c.EntryHealth.Path, c.EntryHealth.Source)
		}
		if !strings.Contains(sv.listen, "ssl") && sv.redirectsToHTTPS() {
			continue
		}
		wanted := map[string]bool{c.EntryHealth.Path: true}
		for _, r := range c.Routes {
			wanted[r.Path] = true
			l, ok := locs[r.Path]
			svcName := r.Service
			if svcName == "" {
				svcName = r.Release
			}
			ns := namespaceOf[r.Release]
			want := fmt.Sprintf("http://%s.%s.svc:%d%s", svcName, ns, r.Port, r.To)
			got := fmt.Sprintf("http://%s%s", l.upstream, l.to)
			if !ok {
				prob("no location %s; Alt routes it to %s (%s)", r.Path, want, r.Source)
				continue
			}
			host, port, _ := strings.Cut(l.upstream, ":")
			if !slices.Contains([]string{svcName + "." + ns + ".svc", svcName + "." + ns + ".svc.cluster.local"}, host) || port != strconv.Itoa(r.Port) || l.to != r.To {
				prob("location %s proxies to %s; Alt routes it to %s (%s)", r.Path, got, want, r.Source)
				continue
			}
			if !reached[r.Path] {
				reached[r.Path] = true
				ps = append(ps, routeReaches(c, objs, r, svcName, ns)...)
			}
		}
		var extra []string
		for p, l := range locs {
			if !wanted[p] && l.upstream != "" {
				extra = append(extra, p)
			}
		}
		sort.Strings(extra)
		for _, p := range extra {
			prob("location %s proxies to %s, a route Alt does not have (%s routes)", p, locs[p].upstream, contract.File)
		}
	}
	return ps
}

// routeReaches checks that the route's Service port leads to a port the
// service's code listens on.
func routeReaches(c *contract.Contract, objs []*Object, r contract.Route, svcName, ns string) Problems {
	svc := c.Service(r.Release)
	for _, o := range objs {
		k8s, ok := typed(o).(*corev1.Service)
		if !ok || o.Name != svcName || o.Namespace != ns {
			continue
		}
		for _, sp := range k8s.Spec.Ports {
			if int(sp.Port) != r.Port {
				continue
			}
			if svc == nil || sp.TargetPort.Type == intstr.String || slices.ContainsFunc(svc.Ports, func(f contract.Fact) bool { return f.Port == targetPort(sp) }) {
				return nil
			}
			return Problems{o.problem("port %d targets %d; %s listens on %s", sp.Port, targetPort(sp), r.Release, portList(svc.Ports))}
		}
		return Problems{o.problem("no port %d, which nginx-external's %s route uses (%s)", r.Port, r.Path, r.Source)}
	}
	return Problems{{File: contract.File, Where: "route " + r.Path, Msg: fmt.Sprintf("no rendered Service %s/%s", ns, svcName), Profiles: profiles(objs[0].Profile)}}
}

func targetPort(sp corev1.ServicePort) int {
	if sp.TargetPort.IntValue() == 0 {
		return int(sp.Port)
	}
	return sp.TargetPort.IntValue()
}

// releaseNamespaces maps every release of a profile to its namespace.
func releaseNamespaces(s *stack.Stack, profile string) map[string]string {
	m := map[string]string{}
	for _, l := range s.Layers {
		v, err := l.View(profile, nil)
		if err != nil {
			continue
		}
		for _, r := range v.Releases {
			m[r.Name] = r.Namespace
		}
	}
	return m
}
