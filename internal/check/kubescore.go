package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/alt-platform/orchestration/internal/stack"

	"github.com/alt-platform/orchestration/internal/run"
)

// KubeScoreFile lists, relative to the repository root, the kube-score
// checks this project disagrees with, each with its reason. Every other
// check kube-score runs by default must pass.
const KubeScoreFile = "charts/kube-score.yaml"

// KubernetesMinor is the minor of the pinned control plane: the version
// kube-score scores against and Pod Security is evaluated at.
const KubernetesMinor = "v1.34"

// KubeScoreIgnore is one entry of KubeScoreFile: a check, where it is
// ignored, and why.
type KubeScoreIgnore struct {
	Check string `json:"check"`
	// Objects limits the entry to these objects ("Kind namespace/name");
	// empty: every object.
	Objects []string `json:"objects,omitempty"`
	// Profiles limits the entry to these profiles; empty: every profile.
	Profiles []string `json:"profiles,omitempty"`
	Reason   string   `json:"reason"`
}

// covers reports whether the entry ignores the check's finding on the
// object (Object.ID) in the profile.
func (ig KubeScoreIgnore) covers(check, object, profile string) bool {
	return ig.Check == check &&
		(len(ig.Objects) == 0 || slices.Contains(ig.Objects, object)) &&
		(len(ig.Profiles) == 0 || slices.Contains(ig.Profiles, profile))
}

// KubeScoreIgnores reads KubeScoreFile: every entry names a check that
// kube-score knows (known: the IDs `kube-score list` prints; nil skips that
// test), known profiles if any, and a reason.
func KubeScoreIgnores(repo string, known []string) ([]KubeScoreIgnore, error) {
	b, err := os.ReadFile(filepath.Join(repo, KubeScoreFile))
	if err != nil {
		return nil, Problems{{File: KubeScoreFile, Msg: err.Error()}}
	}
	var f struct {
		Ignore []KubeScoreIgnore `json:"ignore"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, Problems{{File: KubeScoreFile, Msg: "not a list of {check, reason} under ignore: " + err.Error()}}
	}
	var ps Problems
	for i, ig := range f.Ignore {
		field := fmt.Sprintf("ignore[%d]", i)
		switch {
		case ig.Check == "":
			ps = append(ps, Problem{File: KubeScoreFile, Msg: field + ".check is empty"})
		case known != nil && !slices.Contains(known, ig.Check):
			ps = append(ps, Problem{File: KubeScoreFile, Msg: fmt.Sprintf("%s.check: kube-score has no check %q (kube-score list names them)", field, ig.Check)})
		}
		for j, p := range ig.Profiles {
			if _, ok := stack.ProfileOrder[p]; !ok {
				ps = append(ps, Problem{File: KubeScoreFile, Msg: fmt.Sprintf("%s.profiles[%d]: no profile %q (dev, staging, prod)", field, j, p)})
			}
		}
		for j, o := range ig.Objects {
			if kind, name, ok := strings.Cut(o, " "); !ok || kind == "" || name == "" {
				ps = append(ps, Problem{File: KubeScoreFile, Msg: fmt.Sprintf("%s.objects[%d]: %q is not \"Kind namespace/name\"", field, j, o)})
			}
		}
		if strings.TrimSpace(ig.Reason) == "" {
			ps = append(ps, Problem{File: KubeScoreFile, Msg: fmt.Sprintf("%s.reason: ignoring %q needs a reason", field, ig.Check)})
		}
	}
	return f.Ignore, ps.Err()
}

// kubeScoreChecks are the IDs of the checks the kube-score binary knows.
func kubeScoreChecks(ctx context.Context, r *run.Runner, bin string) ([]string, error) {
	out, err := r.Output(ctx, bin, "list")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if id, _, ok := strings.Cut(l, ","); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// KubeScore runs kube-score (bin) once per profile over every object
// rendered for it, as a reviewer would run it over the manifests. Every
// finding graded warning or critical that no entry of KubeScoreFile covers
// is a problem naming the object (its template file, release and layer)
// and the check. An object of a namespaced kind without metadata.namespace is a
// problem too: whatever consumes the rendered manifests (kube-score, a
// GitOps tool, a policy checker) cannot tell where it belongs. kube-score is
// given every object with its namespace all the same, so that its own
// findings are not blurred by that one.
//
// An entry of KubeScoreFile that covers no finding in any profile is a
// note: it may be dropped.
func KubeScore(ctx context.Context, r *run.Runner, repo, bin string, objs []*Object) ([]Note, error) {
	rr := runner(r, repo)
	known, err := kubeScoreChecks(ctx, rr, bin)
	if err != nil {
		return nil, err
	}
	ignores, err := KubeScoreIgnores(repo, known)
	if err != nil {
		return nil, err
	}
	// kube-score runs every check; the ignored findings are dropped here,
	// so that an entry that ignores nothing shows.
	used := make([]bool, len(ignores))
	ignored := func(check, object, profile string) bool {
		for i, ig := range ignores {
			if ig.covers(check, object, profile) {
				used[i] = true
				return true
			}
		}
		return false
	}

	var ps Problems
	failed := false
	order, groups := byProfile(objs)
	for _, p := range order {
		docs, index, missing := kubeScoreInput(groups[p])
		ps = append(ps, missing...)
		scored, err := kubeScoreRun(ctx, rr, bin, docs)
		if err != nil {
			ps = append(ps, Problem{File: KubeScoreFile, Where: "kube-score score (" + p + ")", Msg: err.Error(), Profiles: profiles(p)})
			failed = true
			continue
		}
		for _, s := range scored {
			key := objectKey(s.TypeMeta.Kind, s.ObjectMeta.Namespace, s.ObjectMeta.Name)
			o := index[key]
			if o != nil {
				key = o.ID()
			}
			for _, c := range s.Checks {
				if c.Skipped || c.Grade > kubeScoreWarning || ignored(c.Check.ID, key, p) {
					continue
				}
				msg := fmt.Sprintf("kube-score %s %s: %s", c.Check.ID, gradeName(c.Grade), c.comments())
				if o == nil {
					ps = append(ps, Problem{File: KubeScoreFile, Where: key, Msg: msg, Profiles: profiles(p)})
					continue
				}
				ps = append(ps, o.problem("%s", msg))
			}
		}
	}
	var notes []Note
	for i, ig := range ignores {
		if !used[i] && !failed {
			notes = append(notes, Note{Check: "kube-score", What: fmt.Sprintf("nothing: %s ignore[%d] (%s)", KubeScoreFile, i, ig.Check),
				Why: "no rendered object fails it where it applies; the entry may go"})
		}
	}
	return notes, ps.Err()
}

// kubeScoreInput is the profile's objects as one YAML stream, each with its
// namespace in metadata.namespace; the objects by kind, namespace and name;
// and a problem for each namespaced object that lacks metadata.namespace.
func kubeScoreInput(objs []*Object) ([]byte, map[string]*Object, Problems) {
	var ps Problems
	var b strings.Builder
	index := map[string]*Object{}
	for _, o := range objs {
		index[objectKey(o.Kind, o.Namespace, o.Name)] = o
		doc := o.Raw
		md, _ := o.Doc["metadata"].(map[string]any)
		if o.Namespace != "" && md["namespace"] == nil {
			ps = append(ps, o.problem("no metadata.namespace: anything that reads the rendered manifests (kube-score, a GitOps tool, a policy checker) cannot tell that it belongs in %s; set it to {{ .Release.Namespace }}", o.Namespace))
			c := make(map[string]any, len(o.Doc))
			for k, v := range o.Doc {
				c[k] = v
			}
			m := make(map[string]any, len(md)+1)
			for k, v := range md {
				m[k] = v
			}
			m["namespace"] = o.Namespace
			c["metadata"] = m
			if y, err := yaml.Marshal(c); err == nil {
				doc = y
			}
		}
		b.WriteString("---\n")
		b.Write(doc)
		if len(doc) > 0 && doc[len(doc)-1] != '\n' {
			b.WriteString("\n")
		}
	}
	return []byte(b.String()), index, ps
}

// objectKey names an object as Object.ID does for a namespaced one.
func objectKey(kind, namespace, name string) string { return kind + " " + namespace + "/" + name }

// kube-score's grades (scorecard.Grade).
const (
	kubeScoreCritical = 1
	kubeScoreWarning  = 5
)

func gradeName(g int) string {
	switch {
	case g <= kubeScoreCritical:
		return "CRITICAL"
	case g <= kubeScoreWarning:
		return "WARNING"
	}
	return fmt.Sprintf("grade %d", g)
}

// kubeScoreObject is one object of kube-score's JSON output (v2).
type kubeScoreObject struct {
	TypeMeta struct {
		Kind string `json:"kind"`
	} `json:"type_meta"`
	ObjectMeta struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"object_meta"`
	Checks []kubeScoreCheck `json:"checks"`
}

type kubeScoreCheck struct {
	Check struct {
		ID string `json:"id"`
	} `json:"check"`
	Grade    int  `json:"grade"`
	Skipped  bool `json:"skipped"`
	Comments []struct {
		Path        string `json:"path"`
		Summary     string `json:"summary"`
		Description string `json:"description"`
	} `json:"comments"`
}

func (c kubeScoreCheck) comments() string {
	var parts []string
	for _, cm := range c.Comments {
		s := cm.Summary
		if cm.Path != "" {
			s = cm.Path + ": " + s
		}
		if cm.Description != "" {
			s += " (" + strings.TrimSuffix(cm.Description, ".") + ")"
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// kubeScoreRun scores the documents with every default check. kube-score
// exits 1 when it finds something critical; its JSON is read either way.
func kubeScoreRun(ctx context.Context, r *run.Runner, bin string, docs []byte) ([]kubeScoreObject, error) {
	f, err := os.CreateTemp("", "alt-kube-score-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(docs); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	out, err := r.Output(ctx, bin, "score", "--output-format", "json", "--color", "never",
		"--kubernetes-version", KubernetesMinor, f.Name())
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1 && strings.HasPrefix(strings.TrimSpace(out), "[")) {
		return nil, err
	}
	var objs []kubeScoreObject
	if jerr := json.Unmarshal([]byte(out), &objs); jerr != nil {
		return nil, fmt.Errorf("kube-score's JSON output: %v (exit: %v)", jerr, err)
	}
	return objs, nil
}
