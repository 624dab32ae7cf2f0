package check

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
)

// Rendered is one Helm release of one layer under one profile, rendered.
type Rendered struct {
	Profile     string
	Layer       string // config name, e.g. alt-core-services
	Release     string
	Namespace   string
	Chart       string   // chart folder relative to the repository root, or the remote chart's name
	ValuesFiles []string // relative to the repository root
	Set         []string // the --set arguments (image placeholders)
	// Skipped says why the release was not rendered (a remote chart);
	// empty when it was.
	Skipped string
	Objects []*Object
}

// Object is one rendered Kubernetes object and where it came from.
type Object struct {
	Profile    string
	Layer      string
	Release    string
	Chart      string // chart folder relative to the repository root
	Source     string // template file relative to the repository root (from the "# Source:" line)
	Namespace  string // metadata.namespace, else the release namespace for a namespaced kind
	APIVersion string
	Kind       string
	Name       string
	Raw        []byte         // the YAML document as Helm printed it
	Doc        map[string]any // the document as JSON data

	decoded k8sruntime.Object // the document as its Kubernetes type (nil: not built in), set by parseManifests
}

// ID names the object: "Kind namespace/name" or "Kind name".
func (o *Object) ID() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Desc is ID with the release and layer, for problems.
func (o *Object) Desc() string {
	return fmt.Sprintf("%s (release %s, layer %s)", o.ID(), o.Release, o.Layer)
}

func (o *Object) problem(format string, a ...any) Problem {
	return Problem{File: o.Source, Where: o.Desc(), Msg: fmt.Sprintf(format, a...), Profiles: profiles(o.Profile)}
}

func profiles(p string) []string {
	if p == "" {
		return nil
	}
	return []string{p}
}

// clusterScoped are the built-in kinds without a namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true, "PersistentVolume": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"CustomResourceDefinition": true, "StorageClass": true, "PriorityClass": true, "IngressClass": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true, "APIService": true,
	"CSIDriver": true, "RuntimeClass": true, "ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	// cert-manager's cluster-scoped kinds.
	"ClusterIssuer": true,
}

// Objects flattens rendered releases into their objects.
func Objects(rs []Rendered) []*Object {
	var objs []*Object
	for _, r := range rs {
		objs = append(objs, r.Objects...)
	}
	return objs
}

// Skipped lists the releases that were not rendered, as notes.
func Skipped(rs []Rendered) []Note {
	var ns []Note
	for _, r := range rs {
		if r.Skipped != "" {
			ns = append(ns, Note{Check: "render", What: fmt.Sprintf("release %s (layer %s, chart %s)", r.Release, r.Layer, r.Chart), Why: r.Skipped})
		}
	}
	return dedupeNotes(ns)
}

// placeholders are a release's setValueTemplates filled as Skaffold would
// fill them for the profile's placeholder references (stack.Placeholders:
// <image>:sim, pinned by digest in staging and prod), with cert-manager
// deployed (ALT_CERT_MANAGER=on, as the engine sets it where cert-manager
// runs: Render renders pki and TLS at the entry; SkaffoldRender the rest).
func placeholders(rel stack.Release, refs map[string]string) ([]string, error) {
	vars := map[string]string{"ALT_CERT_MANAGER": "on"}
	for img, ref := range refs {
		stack.ImageVars(vars, img, ref)
	}
	return rel.Sets(vars)
}

// release is one release of one layer under one profile, with the --set
// arguments Skaffold would give it on a run that builds nothing.
type release struct {
	profile string
	layer   *stack.Layer
	stack.Release
	sets []string
}

// releases walks every release of every layer under the profiles, in
// order. A layer that has no such profile, or a release whose
// setValueTemplates cannot be filled, is a problem instead.
func releases(s *stack.Stack, profileNames []string) ([]release, Problems) {
	var out []release
	var ps Problems
	for _, p := range profileNames {
		refs := stack.Placeholders(p, s.Images(p))
		for _, l := range s.Layers {
			v, err := l.View(p, nil)
			if err != nil {
				ps = append(ps, Problem{File: l.File, Where: "layer " + l.Name, Msg: err.Error(), Profiles: profiles(p)})
				continue
			}
			for _, rel := range v.Releases {
				sets, err := placeholders(rel, refs)
				if err != nil {
					ps = append(ps, Problem{File: l.File, Where: fmt.Sprintf("release %s (layer %s)", rel.Name, l.Name), Msg: err.Error(), Profiles: profiles(p)})
					continue
				}
				out = append(out, release{profile: p, layer: l, Release: rel, sets: sets})
			}
		}
	}
	return out, ps
}

// helmJob is one `helm template` invocation, shared by every profile
// whose release renders with the same arguments.
type helmJob struct {
	args    []string
	release stack.Release
	objects []*Object
	err     error
}

// Render runs `helm template` for every release of every layer under each
// profile (in parallel, at most GOMAXPROCS at a time). A release that
// renders with the same chart, namespace, values files and image values in
// several profiles is rendered once. First-party images get the
// placeholders <image>:sim. A remote chart (cert-manager) cannot be fetched
// offline: its Rendered says so in Skipped and has no objects.
//
// The error lists every release that failed to render, with Helm's output.
func Render(ctx context.Context, r *run.Runner, s *stack.Stack, helm string, profileNames ...string) ([]Rendered, error) {
	if err := charts.Vendor(s.Repo); err != nil {
		return nil, err
	}
	var out []Rendered
	jobs := map[string]*helmJob{}
	var order []string
	jobOf := map[int]string{}
	rels, ps := releases(s, profileNames)
	for _, rel := range rels {
		rd := Rendered{Profile: rel.profile, Layer: rel.layer.Name, Release: rel.Name, Namespace: rel.Namespace, Chart: rel.Chart, ValuesFiles: rel.ValuesFiles}
		if rel.Remote {
			rd.Skipped = fmt.Sprintf("remote chart %s %s: no chart repository is reachable offline, so its objects (and the CRDs it installs) are not rendered", rel.Chart, rel.Version)
			out = append(out, rd)
			continue
		}
		rd.Set = rel.sets
		args := append(rel.TemplateArgs("", rel.sets), "--include-crds")
		key := strings.Join(args, "\x00")
		if _, ok := jobs[key]; !ok {
			jobs[key] = &helmJob{args: args, release: rel.Release}
			order = append(order, key)
		}
		jobOf[len(out)] = key
		out = append(out, rd)
	}

	rr := runner(r, s.Repo)
	parallel(len(order), func(i int) {
		j := jobs[order[i]]
		stdout, err := rr.Output(ctx, helm, j.args...)
		if err != nil {
			j.err = err
			return
		}
		j.objects, j.err = parseManifests(stdout, j.release.Chart, j.release.Namespace)
	})

	failed := map[string]bool{}
	for i := range out {
		key, ok := jobOf[i]
		if !ok {
			continue
		}
		j := jobs[key]
		rd := &out[i]
		if j.err != nil {
			if !failed[key] {
				failed[key] = true
				ps = append(ps, Problem{File: rd.Chart, Where: fmt.Sprintf("release %s (layer %s)", rd.Release, rd.Layer),
					Msg: "helm template failed: " + j.err.Error(), Profiles: profiles(rd.Profile)})
			}
			continue
		}
		for _, o := range j.objects {
			c := *o
			c.Profile, c.Layer, c.Release = rd.Profile, rd.Layer, rd.Release
			rd.Objects = append(rd.Objects, &c)
		}
	}
	return out, ps.Err()
}

// runner copies r (or a plain runner) to run in dir.
func runner(r *run.Runner, dir string) *run.Runner {
	var rr run.Runner
	if r != nil {
		rr = *r
	}
	rr.Dir = dir
	return &rr
}

// parallel calls f(0..n-1), at most GOMAXPROCS at a time.
func parallel(n int, f func(i int)) {
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}(i)
	}
	wg.Wait()
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// parseManifests splits Helm's output into objects. chart is the chart
// folder (relative to the repository root); the "# Source: <chart>/..."
// comment of each document is mapped into it.
func parseManifests(out, chart, namespace string) ([]*Object, error) {
	var objs []*Object
	var errs []error
	for _, doc := range docSep.Split(out, -1) {
		src := ""
		empty := true
		for _, line := range strings.Split(doc, "\n") {
			t := strings.TrimSpace(line)
			if s, ok := strings.CutPrefix(t, "# Source: "); ok && src == "" {
				src = sourceFile(chart, s)
			}
			if t != "" && !strings.HasPrefix(t, "#") {
				empty = false
			}
		}
		if empty {
			continue
		}
		if src == "" {
			src = chart
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			errs = append(errs, fmt.Errorf("%s: not valid YAML: %v", src, err))
			continue
		}
		o := &Object{Chart: chart, Source: src, Raw: []byte(strings.TrimLeft(doc, "\n")), Doc: m}
		o.APIVersion, _ = m["apiVersion"].(string)
		o.Kind, _ = m["kind"].(string)
		md, _ := m["metadata"].(map[string]any)
		o.Name, _ = md["name"].(string)
		o.Namespace, _ = md["namespace"].(string)
		if o.Namespace == "" && !clusterScoped[o.Kind] {
			o.Namespace = namespace
		}
		o.decoded = decode(o.Raw)
		objs = append(objs, o)
	}
	return objs, errors.Join(errs...)
}

// sourceFile maps Helm's "<chart name>/templates/x.yaml" to the file under
// the chart folder.
func sourceFile(chart, src string) string {
	_, rest, ok := strings.Cut(src, "/")
	if !ok {
		return chart
	}
	return filepath.ToSlash(path.Join(filepath.ToSlash(chart), rest))
}

// byProfile groups objects by profile, in first-seen order.
func byProfile(objs []*Object) ([]string, map[string][]*Object) {
	var order []string
	m := map[string][]*Object{}
	for _, o := range objs {
		if _, ok := m[o.Profile]; !ok {
			order = append(order, o.Profile)
		}
		m[o.Profile] = append(m[o.Profile], o)
	}
	return order, m
}
