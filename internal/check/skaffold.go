package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
)

// CertManagerOff is the environment under which Skaffold renders offline:
// the cert-manager-off profile of 01-foundation leaves out cert-manager
// (a remote chart, which cannot be fetched without a network) and the PKI
// that needs its CRDs.
const CertManagerOff = "ALT_CERT_MANAGER=off"

// SkaffoldRender runs, in the repository,
//
//	skaffold render --offline -f skaffold/skaffold.yaml -p <profile> \
//	  --build-artifacts=<every image of the stack as name:sim> --digest-source=tag
//
// with ALT_CERT_MANAGER=off in the environment, proving that the root config
// and every layer it requires render under the profile. The runner's
// environment must put helm on PATH (tools.Cache.Env does). It returns the
// objects Skaffold printed (without template sources) and a note on what
// the offline render leaves out.
func SkaffoldRender(ctx context.Context, r *run.Runner, s *stack.Stack, skaffold, profile string) ([]*Object, Note, error) {
	note := Note{Check: "skaffold", What: "cert-manager and pki releases in `skaffold render -p " + profile + "`",
		Why: CertManagerOff + ": the jetstack chart repository cannot be reached offline (Render still renders pki and, with ALT_CERT_MANAGER=on, nginx-external's Certificate and HTTPS server)"}
	if err := charts.Vendor(s.Repo); err != nil {
		return nil, note, err
	}
	dir, err := os.MkdirTemp("", "alt-build-artifacts-")
	if err != nil {
		return nil, note, err
	}
	defer os.RemoveAll(dir)
	artifacts := filepath.Join(dir, "build-artifacts.json")
	if err := stack.Artifacts(stack.Placeholders(profile, s.Images(profile))).Write(artifacts); err != nil {
		return nil, note, err
	}

	rr := runner(r, s.Repo)
	env := rr.Env
	if env == nil {
		env = os.Environ()
	}
	rr.Env = append(slices.Clone(env), CertManagerOff)
	out, err := rr.Output(ctx, skaffold, "render", "--offline", "-f", stack.RootFile, "-p", profile,
		"--build-artifacts="+artifacts, "--digest-source=tag")
	if err != nil {
		return nil, note, Problems{{File: stack.RootFile, Where: "skaffold render -p " + profile, Msg: err.Error(), Profiles: profiles(profile)}}
	}
	objs, err := parseManifests(out, stack.RootFile, "")
	for _, o := range objs {
		o.Profile = profile
	}
	if err != nil {
		return objs, note, Problems{{File: stack.RootFile, Where: "skaffold render -p " + profile, Msg: err.Error(), Profiles: profiles(profile)}}
	}
	return objs, note, nil
}

// SameAsSkaffold compares what Skaffold rendered for a profile (under
// ALT_CERT_MANAGER=off) with what Render rendered for the same releases:
// the same objects (kind, namespace as written, name) with the same
// container images. A difference means the stack model, which every other
// check works from, reads the Skaffold files differently from Skaffold.
func SameAsSkaffold(s *stack.Stack, profile string, skaffoldObjs []*Object, rendered []Rendered) error {
	off := func(k string) string {
		name, val, _ := strings.Cut(CertManagerOff, "=")
		if k == name {
			return val
		}
		return ""
	}
	want := map[string]bool{} // layer/release that Skaffold renders
	for _, l := range s.Layers {
		v, err := l.View(profile, off)
		if err != nil {
			continue
		}
		for _, r := range v.Releases {
			want[l.Name+"/"+r.Name] = true
		}
	}
	count := func(objs []*Object) map[string]int {
		m := map[string]int{}
		for _, o := range objs {
			m[fingerprint(o)]++
		}
		return m
	}
	var ours []*Object
	for _, r := range rendered {
		if r.Profile == profile && want[r.Layer+"/"+r.Release] {
			for _, o := range r.Objects {
				// cert-manager's objects (nginx-external's Certificate)
				// exist only with cert-manager, which Render has and
				// Skaffold's offline render has not.
				if !strings.HasPrefix(o.APIVersion, "cert-manager.io/") {
					ours = append(ours, o)
				}
			}
		}
	}
	a, b := count(ours), count(skaffoldObjs)
	var ps Problems
	for _, k := range sortedMapKeys(a) {
		if a[k] != b[k] {
			ps = append(ps, Problem{File: stack.RootFile, Where: k, Msg: fmt.Sprintf("rendered %d time(s) from the stack model but %d time(s) by skaffold render", a[k], b[k]), Profiles: profiles(profile)})
		}
	}
	for _, k := range sortedMapKeys(b) {
		if _, ok := a[k]; !ok {
			ps = append(ps, Problem{File: stack.RootFile, Where: k, Msg: fmt.Sprintf("rendered %d time(s) by skaffold render but not from the stack model", b[k]), Profiles: profiles(profile)})
		}
	}
	return ps.Err()
}

// fingerprint identifies an object for SameAsSkaffold: kind, namespace as
// written in the document, name and container images.
func fingerprint(o *Object) string {
	md, _ := o.Doc["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	id := o.Kind + " " + o.Name
	if ns != "" {
		id = o.Kind + " " + ns + "/" + o.Name
	}
	var imgs []string
	for _, w := range workloads([]*Object{o}) {
		for _, c := range w.containers() {
			imgs = append(imgs, c.c.Image)
		}
	}
	sort.Strings(imgs)
	if len(imgs) > 0 {
		id += " images " + strings.Join(imgs, ",")
	}
	return id
}
