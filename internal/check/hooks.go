package check

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"

	"github.com/alt-platform/orchestration/internal/stack"
)

// hook is one before- or after-hook of a layer under a profile.
type hook struct {
	layer   string // metadata.name
	file    string // the layer's Skaffold file
	profile string
	phase   string // before, after
	index   int
	command []string
	nss     []string // namespaces of the layer's releases (SKAFFOLD_NAMESPACES)
	// script is the file of scripts/ the command runs (absolute), or "";
	// scripts is the repository's scripts/ folder (absolute), which
	// scripts read (their library) in the simulation.
	script, scripts string
}

// name says which hook it is: "before-hook 1 of layer alt-x (kubectl rollout status ...)".
func (h hook) name() string {
	text := strings.Join(h.command, " ")
	if len(h.command) >= 3 && shells[path.Base(h.command[0])] {
		// The script without its preamble (set -eu, helper functions).
		var lines []string
		for _, l := range strings.Split(h.command[2], "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "set ") || strings.Contains(l, "() {") {
				continue
			}
			lines = append(lines, l)
		}
		text = strings.Join(append(lines, h.command[3:]...), " ")
	}
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > 90 {
		text = text[:87] + "..."
	}
	return fmt.Sprintf("%s-hook %d of layer %s (%s)", h.phase, h.index, h.layer, text)
}

func (h hook) problem(format string, a ...any) Problem {
	return Problem{File: h.file, Where: h.name(), Msg: fmt.Sprintf(format, a...), Profiles: profiles(h.profile)}
}

// layerHooks are the hooks of every layer under a profile, by layer.
func layerHooks(s *stack.Stack, profile string) map[string][]hook {
	m := map[string][]hook{}
	for _, l := range s.Layers {
		v, err := l.View(profile, nil)
		if err != nil {
			continue
		}
		var nss []string
		for _, r := range v.Releases {
			if !slices.Contains(nss, r.Namespace) {
				nss = append(nss, r.Namespace)
			}
		}
		mk := func(phase string, i int, h stack.Hook) hook {
			k := hook{layer: l.Name, file: l.File, profile: profile, phase: phase, index: i, command: h.Command, nss: nss,
				scripts: filepath.Join(s.Repo, stack.ScriptsDir)}
			if sc := h.Script(); sc != "" {
				k.script = filepath.Join(s.Repo, sc)
			}
			return k
		}
		for i, h := range v.Before {
			m[l.Name] = append(m[l.Name], mk("before", i, h))
		}
		for i, h := range v.After {
			m[l.Name] = append(m[l.Name], mk("after", i, h))
		}
	}
	return m
}

// shells are the interpreters whose -c scripts are simulated.
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true}

// simulation is one run of a hook in the shell interpreter, with every
// external command answered by the simulation instead of run.
type simulation struct {
	calls  [][]string // every external command, in order, after expansion
	called [][]string // every simple command (functions and builtins too), in order, after expansion
	status int        // exit status
	looped bool       // stopped after simLimit commands
	err    error      // the hook could not be interpreted
}

// simLimit bounds the external commands of one simulated run (a loop that
// waits for a condition that never comes would run forever).
const simLimit = 400

var errLooped = errors.New("command limit reached")

// simulate runs a hook's command in mvdan.cc/sh's interpreter, running no
// program: every external command (kubectl, sleep, date, ...) is recorded
// and answered without output, with exit status 1 when fail is set and 0
// otherwise. A command that runs a script of scripts/ (h.script) runs
// that script with the command's arguments; a shell (sh -c SCRIPT
// ARGS...) runs SCRIPT; any other command is run as the one simple command
// it is. The only files read are those under scripts/ (the library a
// script sources); nothing is written.
//
// With fail unset the run explores the hook as if every check passed:
// `exit` and errexit (set -e) and nounset (set -u) are ignored, so one run
// reaches every command the hook would run, in every iteration.
func simulate(h hook, env []string, fail bool) simulation {
	var sim simulation
	command := h.command
	if len(command) == 0 {
		sim.err = errors.New("empty command")
		return sim
	}
	script := quoteArgs(command)
	var params []string
	lang := syntax.LangBash
	name := "hook"
	if h.script != "" {
		b, err := readScript(h.script, filepath.Dir(h.scripts))
		if err != nil {
			sim.err = err
			return sim
		}
		script, name, lang = string(b), h.script, syntax.LangPOSIX
		params = append([]string{"--"}, command[1:]...)
	} else if sh := path.Base(command[0]); shells[sh] && len(command) >= 3 && strings.HasPrefix(command[1], "-") && strings.Contains(command[1], "c") {
		script = command[2]
		for _, o := range strings.TrimPrefix(command[1], "-") {
			if o != 'c' {
				params = append(params, "-"+string(o))
			}
		}
		params = append(params, "--")
		if len(command) > 4 {
			params = append(params, command[4:]...) // command[3] is $0
		}
		if sh != "bash" {
			lang = syntax.LangPOSIX
		}
	}
	file, err := syntax.NewParser(syntax.Variant(lang)).Parse(strings.NewReader(script), name)
	if err != nil {
		sim.err = err
		return sim
	}
	if !fail {
		params = relaxOptions(params)
	}
	var mu sync.Mutex
	exec := func(next interp.ExecHandlerFunc) interp.ExecHandlerFunc {
		return func(ctx context.Context, args []string) error {
			mu.Lock()
			defer mu.Unlock()
			if len(sim.calls) >= simLimit {
				sim.looped = true
				return errLooped
			}
			sim.calls = append(sim.calls, slices.Clone(args))
			if fail {
				return interp.ExitStatus(1)
			}
			return nil
		}
	}
	opts := []interp.RunnerOption{
		interp.Env(expand.ListEnviron(env...)),
		interp.StdIO(strings.NewReader(""), io.Discard, io.Discard),
		interp.ExecHandlers(exec),
		interp.OpenHandler(func(_ context.Context, p string, flag int, _ os.FileMode) (io.ReadWriteCloser, error) {
			if rel, err := filepath.Rel(h.scripts, p); h.scripts != "" && err == nil && filepath.IsLocal(rel) && flag&(os.O_WRONLY|os.O_RDWR) == 0 {
				return os.Open(p) // the library a script sources
			}
			return nullFile{}, nil
		}),
		interp.ReadDirHandler2(func(context.Context, string) ([]fs.DirEntry, error) { return nil, nil }),
		interp.StatHandler(func(context.Context, string, bool) (fs.FileInfo, error) { return nil, fs.ErrNotExist }),
		interp.Dir("/"),
	}
	if len(params) > 0 {
		opts = append(opts, interp.Params(params...))
	}
	opts = append(opts, interp.CallHandler(func(_ context.Context, args []string) ([]string, error) {
		mu.Lock()
		sim.called = append(sim.called, slices.Clone(args))
		mu.Unlock()
		switch {
		case fail:
		case len(args) > 0 && args[0] == "exit":
			return []string{"true"}, nil
		case len(args) > 1 && args[0] == "set":
			return append([]string{"set"}, relaxOptions(args[1:])...), nil
		}
		return args, nil
	}))
	r, err := interp.New(opts...)
	if err != nil {
		sim.err = err
		return sim
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = r.Run(ctx, file)
	var es interp.ExitStatus
	switch {
	case err == nil:
	case errors.As(err, &es):
		sim.status = int(es)
	case errors.Is(err, errLooped), ctx.Err() != nil:
		sim.looped = true
	default:
		sim.err = err
	}
	return sim
}

// relaxOptions drops errexit and nounset from set-style options; what
// follows "--" (or the first word that is not an option) are positional
// parameters, kept as they are.
func relaxOptions(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "+o":
			if i+1 < len(args) {
				i++
				if args[i] == "errexit" || args[i] == "nounset" {
					continue
				}
				out = append(out, a, args[i])
				continue
			}
			out = append(out, a)
		case a == "--" || a == "-" || a == "" || (a[0] != '-' && a[0] != '+'):
			return append(out, args[i:]...)
		case a[0] == '-':
			a = strings.NewReplacer("e", "", "u", "").Replace(a)
			if a != "-" {
				out = append(out, a)
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		s, err := syntax.Quote(a, syntax.LangBash)
		if err != nil {
			s = "''"
		}
		q[i] = s
	}
	return strings.Join(q, " ")
}

// readScript reads a script a hook runs, which Skaffold must be able to
// execute.
func readScript(file, repo string) ([]byte, error) {
	shown := file
	if rel, err := filepath.Rel(repo, file); err == nil {
		shown = rel
	}
	fi, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("it runs %s, which does not exist", shown)
	case err != nil:
		return nil, fmt.Errorf("it runs %s: %w", shown, err)
	case fi.Mode()&0o111 == 0:
		return nil, fmt.Errorf("it runs %s, which is not executable (chmod +x)", shown)
	}
	return os.ReadFile(file)
}

type nullFile struct{}

func (nullFile) Read([]byte) (int, error)    { return 0, io.EOF }
func (nullFile) Write(p []byte) (int, error) { return len(p), nil }
func (nullFile) Close() error                { return nil }

// hookEnv is the environment Skaffold gives a host hook.
func hookEnv(h hook) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent",
		"SKAFFOLD_KUBE_CONTEXT=alt-check", "SKAFFOLD_NAMESPACES=" + strings.Join(h.nss, ","),
		"SKAFFOLD_RPC_PORT=50051", "SKAFFOLD_HTTP_PORT=50052", "SKAFFOLD_WORK_DIR=/",
	}
}

// target is one object a kubectl command of a hook names.
type target struct {
	kind     string // Deployment, Secret, Pod, ...
	ns       string // "" for a cluster-scoped kind
	name     string // "" with a selector
	selector string
	cmd      string // the kubectl command line
}

func (t target) String() string {
	s := t.kind + " "
	if t.ns != "" {
		s += t.ns + "/"
	}
	if t.name != "" {
		return s + t.name
	}
	return s + "-l " + t.selector
}

// resources maps kubectl's resource names (plural, singular, short) to the
// kind and whether it is namespaced.
var resources = func() map[string]struct {
	kind       string
	namespaced bool
} {
	m := map[string]struct {
		kind       string
		namespaced bool
	}{}
	add := func(kind string, namespaced bool, names ...string) {
		for _, n := range names {
			m[n] = struct {
				kind       string
				namespaced bool
			}{kind, namespaced}
		}
	}
	add("Deployment", true, "deployment", "deployments", "deploy")
	add("StatefulSet", true, "statefulset", "statefulsets", "sts")
	add("DaemonSet", true, "daemonset", "daemonsets", "ds")
	add("ReplicaSet", true, "replicaset", "replicasets", "rs")
	add("Job", true, "job", "jobs")
	add("CronJob", true, "cronjob", "cronjobs", "cj")
	add("Pod", true, "pod", "pods", "po")
	add("Service", true, "service", "services", "svc")
	add("Secret", true, "secret", "secrets")
	add("ConfigMap", true, "configmap", "configmaps", "cm")
	add("PersistentVolumeClaim", true, "persistentvolumeclaim", "persistentvolumeclaims", "pvc")
	add("ServiceAccount", true, "serviceaccount", "serviceaccounts", "sa")
	add("NetworkPolicy", true, "networkpolicy", "networkpolicies", "netpol")
	add("ResourceQuota", true, "resourcequota", "resourcequotas", "quota")
	add("LimitRange", true, "limitrange", "limitranges", "limits")
	add("PodDisruptionBudget", true, "poddisruptionbudget", "poddisruptionbudgets", "pdb")
	add("Ingress", true, "ingress", "ingresses", "ing")
	add("Certificate", true, "certificate", "certificates", "cert", "certs")
	add("Issuer", true, "issuer", "issuers")
	add("ClusterIssuer", false, "clusterissuer", "clusterissuers")
	add("Namespace", false, "namespace", "namespaces", "ns")
	return m
}()

// kubectlValueFlags are the kubectl flags that take a value.
var kubectlValueFlags = map[string]bool{
	"-n": true, "--namespace": true, "--context": true, "--kubeconfig": true, "--cluster": true, "--user": true,
	"--server": true, "-s": true, "--as": true, "--as-group": true, "--request-timeout": true, "--token": true,
	"-l": true, "--selector": true, "-o": true, "--output": true, "--for": true, "--timeout": true,
	"--field-selector": true, "-f": true, "--filename": true, "--from": true, "--tail": true, "-c": true,
	"--container": true, "--template": true, "--sort-by": true, "--since": true, "--since-time": true,
	"--revision": true, "--chunk-size": true, "-L": true, "--label-columns": true, "--subresource": true,
	"--replicas": true, "--image": true, "--type": true, "-p": true, "--patch": true, "--raw": true,
}

// readVerbs name objects that must exist; create and delete do not.
var readVerbs = map[string]bool{
	"get": true, "describe": true, "wait": true, "logs": true, "exec": true, "port-forward": true,
	"rollout": true, "scale": true, "patch": true, "label": true, "annotate": true, "attach": true,
}

// kubectlTargets reads one kubectl command: the objects it names (refs),
// the objects it creates, and the resource names it does not know.
func kubectlTargets(args []string) (refs, creates []target, unknown []string) {
	// The command as problems show it: without --context, which every call
	// through scripts/lib/kube.sh carries.
	var shown []string
	for i := 0; i < len(args); i++ {
		switch {
		case strings.HasPrefix(args[i], "--context="):
		case args[i] == "--context" && i+1 < len(args):
			i++
		default:
			shown = append(shown, args[i])
		}
	}
	cmd := strings.Join(shown, " ")
	var pos []string
	flags := map[string]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break // what follows is a command (exec)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		k, v, eq := strings.Cut(a, "=")
		if !eq && kubectlValueFlags[k] && i+1 < len(args) {
			v = args[i+1]
			i++
		}
		flags[k] = v
	}
	ns := flags["-n"]
	if v, ok := flags["--namespace"]; ok {
		ns = v
	}
	if ns == "" {
		ns = "default"
	}
	_, all := flags["-A"]
	if _, ok := flags["--all-namespaces"]; ok {
		all = true
	}
	sel := flags["-l"]
	if v, ok := flags["--selector"]; ok {
		sel = v
	}
	if len(pos) == 0 {
		return nil, nil, nil
	}
	mk := func(res, name string) (target, bool) {
		r, ok := resources[strings.ToLower(strings.SplitN(res, ".", 2)[0])]
		if !ok {
			unknown = append(unknown, res)
			return target{}, false
		}
		t := target{kind: r.kind, name: name, cmd: cmd}
		if r.namespaced {
			t.ns = ns
		}
		if name == "" {
			t.selector = sel
		}
		return t, true
	}
	verb, objs := pos[0], pos[1:]
	switch {
	case verb == "create":
		if from := flags["--from"]; strings.Contains(from, "/") {
			res, name, _ := strings.Cut(from, "/")
			if t, ok := mk(res, name); ok {
				refs = append(refs, t)
			}
		}
		if len(objs) >= 2 {
			if t, ok := mk(objs[0], objs[1]); ok {
				creates = append(creates, t)
			}
		}
		return refs, creates, unknown
	case !readVerbs[verb] || all:
		return nil, nil, nil
	case verb == "rollout":
		if len(objs) == 0 {
			return nil, nil, nil
		}
		objs = objs[1:]
	case verb == "logs" || verb == "exec" || verb == "port-forward" || verb == "attach":
		if len(objs) > 0 && !strings.Contains(objs[0], "/") {
			objs = []string{"pod/" + objs[0]}
		}
		objs = objs[:min(1, len(objs))]
	}
	if len(objs) == 0 {
		return nil, nil, nil
	}
	if slices.ContainsFunc(objs, func(o string) bool { return strings.Contains(o, "/") }) {
		for _, o := range objs {
			if res, name, ok := strings.Cut(o, "/"); ok {
				if t, ok := mk(res, name); ok {
					refs = append(refs, t)
				}
			}
		}
		return refs, nil, unknown
	}
	for _, res := range strings.Split(objs[0], ",") {
		if len(objs) == 1 {
			if sel != "" {
				if t, ok := mk(res, ""); ok {
					refs = append(refs, t)
				}
			}
			continue // a listing names nothing
		}
		for _, name := range objs[1:] {
			if t, ok := mk(res, name); ok {
				refs = append(refs, t)
			}
		}
	}
	return refs, nil, unknown
}

// hookModel is what the simulation of one hook found.
type hookModel struct {
	hook
	refs, creates []target
	unknown       []string // resource names kubectl was given that the check does not know
	failRun       simulation
	exploreRun    simulation
}

var simCache sync.Map // command+env → [2]simulation

// model simulates a hook twice: once exploring (every command succeeds)
// to find what it names, once with every command failing to see whether
// it can fail.
func model(h hook) hookModel {
	env := hookEnv(h)
	key := strings.Join(h.command, "\x00") + "\x01" + strings.Join(env, "\x00") + "\x01" + h.script
	if h.script != "" {
		// What the script and its library say (a test edits a copy).
		filepath.WalkDir(h.scripts, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				fi, _ := d.Info()
				key += fmt.Sprintf("\x01%s %v %x", p, fi.Mode(), sha256.Sum256(b))
			}
			return nil
		})
	}
	var runs [2]simulation
	if v, ok := simCache.Load(key); ok {
		runs = v.([2]simulation)
	} else {
		runs = [2]simulation{simulate(h, env, false), simulate(h, env, true)}
		simCache.Store(key, runs)
	}
	m := hookModel{hook: h, exploreRun: runs[0], failRun: runs[1]}
	for _, c := range runs[0].calls {
		if path.Base(c[0]) != "kubectl" {
			continue
		}
		refs, creates, unknown := kubectlTargets(c)
		m.refs = append(m.refs, refs...)
		m.creates = append(m.creates, creates...)
		m.unknown = append(m.unknown, unknown...)
	}
	return m
}

// Hooks checks every before- and after-hook of every layer, per profile:
//
//   - it is one line: a hook runs a script of scripts/ (or one command);
//     a multi-line shell script written in the Skaffold file is a problem;
//   - the script it runs exists and is executable;
//   - it can fail: run in a shell interpreter with every command it runs
//     failing (kubectl, and anything else), it exits non-zero. A hook that
//     still exits 0 (`... || true`, `; exit 0`, `set +e` and no check
//     after, a bare `echo`) is cosmetic; one that keeps looping (a wait
//     without a bound) hangs the deploy instead of failing it;
//   - every object its kubectl commands name (rollout status, wait, get,
//     logs, exec, create --from, ...: kind, name or label selector, and
//     namespace, all after the shell expanded its loops and variables) is
//     deployed in that namespace by the hook's own layer or by a layer it
//     depends on in the Mage graph (g); a before-hook does not wait for its
//     own layer's objects, which do not exist yet on a first deploy.
//     A Secret no release of the profile creates (staging and prod provide
//     them) must be created in another profile, or read by a workload, of
//     such a layer. Objects of a remote chart (not rendered) are notes.
//
// The hook runs in mvdan.cc/sh's interpreter: a script of scripts/ runs
// with the hook's arguments and sources its library (the only files read);
// no program is started and no file is written, so the check runs anywhere
// and costs milliseconds.
func Hooks(s *stack.Stack, g *stack.Graph, objs []*Object) ([]Note, error) {
	var ps Problems
	var notes []Note
	order, groups := byProfile(objs)
	remote := remoteNamespaces(s, order)
	needs := func(consumer, creator string) bool { return consumer == creator || g.DependsOn(consumer, creator) }

	// Secrets created in any profile, and read by workloads, by namespace/name → layers.
	createdAny := map[objKey][]string{}
	readAny := map[objKey][]string{}
	for _, o := range objs {
		if o.Kind == "Secret" {
			k := objKey{"Secret", o.Namespace, o.Name}
			createdAny[k] = append(createdAny[k], o.Layer)
		}
	}
	for _, w := range workloads(objs) {
		for _, r := range podRefs(w) {
			if r.kind == "Secret" {
				k := objKey{"Secret", w.obj.Namespace, r.name}
				readAny[k] = append(readAny[k], w.obj.Layer)
			}
		}
	}

	for _, p := range order {
		byKey := map[objKey][]*Object{}
		for _, o := range groups[p] {
			k := objKey{o.Kind, o.Namespace, o.Name}
			byKey[k] = append(byKey[k], o)
		}
		ws := workloads(groups[p])
		hooks := layerHooks(s, p)
		for _, l := range s.Names() {
			for _, h := range hooks[l] {
				m := model(h)
				ps = append(ps, m.canFail()...)
				for _, a := range h.command {
					if n := strings.Count(strings.TrimSpace(a), "\n") + 1; n > 1 {
						ps = append(ps, h.problem("a shell script of %d lines written in the Skaffold file: put it in %s/ (sourcing %s, callable by hand with -h, checked by shellcheck) and call it in one line",
							n, stack.ScriptsDir, stack.ScriptLib))
						break
					}
				}
				if m.exploreRun.err != nil {
					continue // canFail reported it
				}
				for _, u := range m.unknown {
					notes = append(notes, Note{Check: "hooks", What: fmt.Sprintf("%q named by %s", u, h.name()), Why: "a resource kind the check does not know"})
				}
				created := map[objKey]bool{}
				for _, c := range m.creates {
					created[objKey{c.kind, c.ns, c.name}] = true
				}
				for _, t := range m.refs {
					if t.cmd == strings.Join(h.command, " ") {
						t.cmd = "kubectl" // the hook is this one command, which its name shows
					}
					if t.kind == "Pod" && t.name != "" {
						notes = append(notes, Note{Check: "hooks", What: fmt.Sprintf("%s named by %s", t, h.name()), Why: "pod names are generated; name the workload instead"})
						continue
					}
					if created[objKey{t.kind, t.ns, t.name}] {
						continue
					}
					var found []*Object
					if t.name != "" {
						found = byKey[objKey{t.kind, t.ns, t.name}]
					} else {
						found = selected(groups[p], ws, t)
					}
					var ok []*Object
					for _, o := range found {
						if needs(h.layer, o.Layer) {
							ok = append(ok, o)
						}
					}
					switch {
					case len(ok) > 0:
						if h.phase == "before" && !slices.ContainsFunc(ok, func(o *Object) bool { return o.Layer != h.layer }) {
							ps = append(ps, h.problem("%s: %s is deployed by this layer (release %s), after its before-hooks ran: on a first deploy it does not exist yet; check it in an after-hook",
								t.cmd, t, ok[0].Release))
						}
					case len(found) > 0:
						ps = append(ps, h.problem("%s: %s is deployed by layer %s (release %s), which layer %s does not depend on in the Mage graph: the hook waits on a layer that may not exist yet; add the dependency (magefiles) or drop the hook",
							t.cmd, t, found[0].Layer, found[0].Release, h.layer))
					case t.ns != "" && remote[t.ns] != "":
						notes = append(notes, Note{Check: "hooks", What: fmt.Sprintf("%s named by %s", t, h.name()), Why: remote[t.ns]})
					case t.kind == "Secret" && t.name != "":
						k := objKey{"Secret", t.ns, t.name}
						if slices.ContainsFunc(createdAny[k], func(l string) bool { return needs(h.layer, l) }) ||
							slices.ContainsFunc(readAny[k], func(l string) bool { return needs(h.layer, l) }) {
							continue // provided outside the repository in this profile
						}
						ps = append(ps, h.problem("%s: %s is neither created (in any profile) nor read by layer %s or a layer it depends on%s",
							t.cmd, t, h.layer, elsewhere(groups[p], t)))
					default:
						ps = append(ps, h.problem("%s: %s is deployed by no release of layer %s or of a layer it depends on%s",
							t.cmd, t, h.layer, elsewhere(groups[p], t)))
					}
				}
			}
		}
	}
	return dedupeNotes(notes), ps.Err()
}

// canFail reports a hook that cannot fail, loops when its checks fail, or
// cannot be interpreted.
func (m hookModel) canFail() Problems {
	switch {
	case m.exploreRun.err != nil || m.failRun.err != nil:
		err := m.exploreRun.err
		if err == nil {
			err = m.failRun.err
		}
		return Problems{m.problem("the hook cannot be interpreted: %v", err)}
	case m.failRun.looped:
		return Problems{m.problem("when the commands it runs fail, the hook never ends (still running after %d commands): it hangs the deploy instead of failing it; bound the wait (--timeout, a deadline) and exit non-zero", simLimit)}
	case m.failRun.status == 0:
		why := "exits 0"
		if n := len(m.failRun.calls); n == 0 {
			why += " and runs no command that could fail"
		} else {
			why += fmt.Sprintf(" even when all %d command(s) it runs fail", n)
		}
		return Problems{m.problem("the hook cannot fail: it %s (look for `|| true`, `; true`, `exit 0`, `set +e`, a bare echo); a hook gates the deploy: it must exit non-zero when what it checks is false", why)}
	}
	return nil
}

// selected are the objects a selector of t names: for kind Pod, the
// workloads in t's namespace whose pod template labels match; for another
// kind, the objects of that kind in the namespace whose labels match.
func selected(objs []*Object, ws []workload, t target) []*Object {
	sel, err := labels.Parse(t.selector)
	if err != nil {
		return nil
	}
	var out []*Object
	if t.kind == "Pod" {
		for _, w := range ws {
			if w.obj.Namespace == t.ns && sel.Matches(labels.Set(w.labels)) {
				out = append(out, w.obj)
			}
		}
		return out
	}
	for _, o := range objs {
		if o.Kind == t.kind && o.Namespace == t.ns && sel.Matches(labels.Set(objLabels(o))) {
			out = append(out, o)
		}
	}
	return out
}

func objLabels(o *Object) map[string]string {
	md, _ := o.Doc["metadata"].(map[string]any)
	ls, _ := md["labels"].(map[string]any)
	out := map[string]string{}
	for k, v := range ls {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// elsewhere says where an object a hook names does exist: in another
// namespace, or in another profile.
func elsewhere(profileObjs []*Object, t target) string {
	var where []string
	for _, o := range profileObjs {
		if o.Kind == t.kind && o.Name == t.name && t.name != "" && o.Namespace != t.ns {
			where = append(where, fmt.Sprintf("namespace %s (layer %s)", o.Namespace, o.Layer))
		}
	}
	sort.Strings(where)
	where = slices.Compact(where)
	if len(where) > 0 {
		return "; it is deployed in " + strings.Join(where, ", ") + ": the hook names the wrong namespace"
	}
	return ""
}

// remoteNamespaces are the namespaces of releases that are not rendered
// (remote charts), with why.
func remoteNamespaces(s *stack.Stack, order []string) map[string]string {
	m := map[string]string{}
	for _, l := range s.Layers {
		for _, p := range order {
			if v, err := l.View(p, nil); err == nil {
				for _, r := range v.Releases {
					if r.Remote {
						m[r.Namespace] = fmt.Sprintf("release %s (remote chart %s) is not rendered", r.Name, r.Chart)
					}
				}
			}
		}
	}
	return m
}
