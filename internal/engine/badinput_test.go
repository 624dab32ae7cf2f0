package engine_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/tools"
)

// The bad-input corpus: testdata/badinput/<case>/case.yaml, one folder per
// case. Each case breaks one input (a Skaffold file, a chart, a values
// file, the Mage graph, an ALT_* variable, the tools cache) in a fresh copy
// of the platform files and runs a Mage target against a sim cluster that
// already holds the deployed platform. The run must fail (unless the case
// is a repair), its output must contain every `want` string (the file and
// field, or the variable), and no object of the cluster may be created or
// changed. Adding a case is adding a folder.

// badCase is one case.yaml. In env values, file contents and want strings,
// ${DIR} is the case's copy of the platform and ${CLOSED_PORT} a loopback
// port that was bound and closed (nothing listens on it).
type badCase struct {
	// What the case breaks, in one line.
	What string `json:"what"`
	// Target is the Mage target to run (default all).
	Target string `json:"target"`
	// Env is added to ALT_CLUSTER=sim ALT_PROFILE=dev NO_COLOR=1.
	Env map[string]string `json:"env"`
	// Files are written (created or replaced), by repository-relative path.
	Files map[string]string `json:"files"`
	// Append adds text at the end of files.
	Append map[string]string `json:"append"`
	// Replace changes the first occurrence of old in file; old must occur.
	Replace []replacement `json:"replace"`
	// Delete removes files or folders.
	Delete []string `json:"delete"`
	// CorruptTool truncates that pinned tool's binary in a private copy of
	// the tools cache (ALT_TOOLS_DIR), the others linked to the real ones.
	CorruptTool string `json:"corruptTool"`
	// Succeeds: the designed outcome is a repair, and the run exits 0.
	Succeeds bool `json:"succeeds"`
	// Want are substrings the output must contain.
	Want []string `json:"want"`

	name string
}

type replacement struct {
	File string `json:"file"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

const corpusDir = "testdata/badinput"

// readCases reads every case of the corpus, strictly (a misspelt key in a
// case.yaml fails the test).
func readCases(t *testing.T) []*badCase {
	t.Helper()
	root := filepath.Join(repoRoot(t), corpusDir)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var cases []*badCase
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "case.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		c := &badCase{name: e.Name()}
		if err := yaml.UnmarshalStrict(b, c); err != nil {
			t.Fatalf("%s/%s/case.yaml: %v", corpusDir, e.Name(), err)
		}
		if c.Target == "" {
			c.Target = "all"
		}
		cases = append(cases, c)
	}
	return cases
}

// expander replaces the case variables.
func expander(dir string, port int) *strings.Replacer {
	return strings.NewReplacer("${DIR}", dir, "${CLOSED_PORT}", fmt.Sprint(port))
}

// apply makes the case's changes in dir, a copy of the platform files.
func (c *badCase) apply(dir string, x *strings.Replacer) error {
	for rel, body := range c.Files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(x.Replace(body)), 0o644); err != nil {
			return err
		}
	}
	for rel, text := range c.Append {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return fmt.Errorf("append: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), append(b, x.Replace(text)...), 0o644); err != nil {
			return err
		}
	}
	for _, r := range c.Replace {
		b, err := os.ReadFile(filepath.Join(dir, r.File))
		if err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		if !strings.Contains(string(b), r.Old) {
			return fmt.Errorf("replace: %s does not contain %q", r.File, r.Old)
		}
		changed := strings.Replace(string(b), r.Old, x.Replace(r.New), 1)
		if err := os.WriteFile(filepath.Join(dir, r.File), []byte(changed), 0o644); err != nil {
			return err
		}
	}
	for _, rel := range c.Delete {
		if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if err := os.RemoveAll(filepath.Join(dir, rel)); err != nil {
			return err
		}
	}
	return nil
}

// copyPlatform copies the platform files of from into a new folder.
func copyPlatform(t *testing.T, from string) string {
	t.Helper()
	dir := t.TempDir()
	if err := engine.CopyPlatform(from, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBadInputCorpus checks the corpus itself, in -short too: every case
// parses, says what it breaks and what it expects, and its changes still
// apply to this repository's files (so a case cannot rot into testing
// nothing when the files it edits change).
func TestBadInputCorpus(t *testing.T) {
	cases := readCases(t)
	if len(cases) < 30 {
		t.Errorf("%d cases in %s; the corpus has at least 30", len(cases), corpusDir)
	}
	root := repoRoot(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.What == "" || len(c.Want) == 0 {
				t.Error("case.yaml needs what: and want:")
			}
			if c.CorruptTool != "" {
				if _, err := tools.Lookup(c.CorruptTool); err != nil {
					t.Error(err)
				}
			}
			if err := c.apply(copyPlatform(t, root), expander("/dir", 1)); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestBadInput runs the corpus against one sim cluster that holds the
// deployed platform: one cold `all`, then every case in its own copy of the
// platform files, pointed at that same cluster.
//
// Sharing the cluster: each copy's .cache/sim is a symbolic link to the
// deployed copy's, so the sim provider of the case's run finds the cluster
// up (state, kubeconfig and certificates are all in that folder) and
// reuses it, with the same ALT_CLUSTER=sim and ALT_CERT_MANAGER as the
// cold deploy, so an unchanged layer has the same digest. (A kube context
// would not do: ALT_CLUSTER=context builds images and turns cert-manager
// on, so every layer would differ.) Runs that reach the cluster take its
// deploy lock, so cases run one after another.
func TestBadInput(t *testing.T) {
	cases := readCases(t)
	p := newPlatform(t)
	start := time.Now()
	if _, err := p.mage(nil, "all"); err != nil {
		t.Fatalf("cold all: %v", err)
	}
	t.Logf("cold all: %s", time.Since(start).Round(time.Second))

	ctx := context.Background()
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	k, err := engine.Connect(ctx, p.kube, "")
	if err != nil {
		t.Fatal(err)
	}
	snap := newSnapshotter(t, k)
	before, revs := snap.take(t), p.revisions()
	if len(before) < 100 || len(revs) < 18 {
		t.Fatalf("the deployed platform has only %d objects and %d releases", len(before), len(revs))
	}
	port := closedPort(t)

	start = time.Now()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Logf("%s", c.What)
			dir := copyPlatform(t, p.dir)
			if err := os.MkdirAll(filepath.Join(dir, ".cache"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(p.dir, ".cache", "sim"), filepath.Join(dir, ".cache", "sim")); err != nil {
				t.Fatal(err)
			}
			x := expander(dir, port)
			if err := c.apply(dir, x); err != nil {
				t.Fatal(err)
			}
			env := []string{}
			for k, v := range c.Env {
				env = append(env, k+"="+x.Replace(v))
			}
			var tc *tools.Cache
			var tool tools.Tool
			if c.CorruptTool != "" {
				tc, tool = corruptTools(t, p.tc, c.CorruptTool)
				if tc.Installed(tool) {
					t.Fatalf("%s with a truncated binary counts as installed", tool.Name)
				}
				env = append(env, "ALT_TOOLS_DIR="+tc.Dir)
			}

			caseStart := time.Now()
			out, err := runCase(t, p, dir, env, c.Target)
			t.Logf("mage %s (%s):\n%s", c.Target, time.Since(caseStart).Round(time.Millisecond), out)
			switch {
			case c.Succeeds && err != nil:
				t.Errorf("the run failed; the designed outcome is a repair: %v", err)
			case !c.Succeeds && err == nil:
				t.Error("the run exited 0")
			}
			for _, w := range c.Want {
				if w = x.Replace(w); !strings.Contains(out, w) {
					t.Errorf("the output does not contain %q", w)
				}
			}
			if strings.Contains(out, "sim cluster in") && !strings.Contains(out, "already up") {
				t.Error("the run did not find the shared sim cluster up")
			}
			if tc != nil {
				if !tc.Installed(tool) {
					t.Errorf("%s is still not installed after the run", tool.Name)
				} else if v, err := (&run.Runner{}).Output(ctx, tc.Path(tool), "version", "--short"); err != nil || !strings.Contains(v, tool.Version) {
					t.Errorf("the rebuilt %s does not run: %q %v", tool.Name, v, err)
				}
			}

			after, nowRevs := snap.take(t), p.revisions()
			if d := diffSnapshots(before, after); len(d) > 0 {
				t.Errorf("the run created or changed %d object(s):\n  %s", len(d), strings.Join(d, "\n  "))
				before = after
			}
			if !equal(revs, nowRevs) {
				t.Errorf("the run changed Helm releases:\n  before %v\n  after  %v", revs, nowRevs)
				revs = nowRevs
			}
		})
	}
	t.Logf("%d cases in %s", len(cases), time.Since(start).Round(time.Second))

	// The snapshot sees a change: a control, so that "nothing changed"
	// above cannot pass by seeing nothing.
	p.kubectl("annotate", "configmap", "alt-shared-config", "-n", "alt-apps", "badinput/control=1")
	if d := diffSnapshots(before, snap.take(t)); len(d) != 1 || !strings.Contains(d[0], "alt-apps/alt-shared-config") {
		t.Errorf("the snapshot did not see exactly the annotated ConfigMap: %v", d)
	}
}

// runCase runs the compiled Mage targets in dir, bounded in time.
func runCase(t *testing.T, p *platform, dir string, env []string, target string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mage(t), target)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(p.env), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Errorf("the run did not end within 3 minutes")
	}
	return string(out), err
}

// closedPort is a loopback port that was bound and closed again.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// corruptTools makes a private tools cache: every pinned tool the real
// cache holds linked to its binary (with its stamp, so it counts as
// installed; a tool built only when needed, docker-buildx, may be absent),
// the named one truncated to half its size, as a build or a copy cut short
// leaves it. The wrapper module of the damaged tool is copied too, so its
// rebuild compiles from the warm Go build cache without resolving modules.
func corruptTools(t *testing.T, real *tools.Cache, name string) (*tools.Cache, tools.Tool) {
	t.Helper()
	c := &tools.Cache{Dir: t.TempDir(), Runner: &run.Runner{}}
	var damaged tools.Tool
	for _, tool := range tools.All {
		if !real.Installed(tool) {
			if tool.Name == name {
				t.Fatalf("the real tools cache has no %s to damage", name)
			}
			continue
		}
		src, dst := real.Path(tool), c.Path(tool)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		stamp, err := os.ReadFile(src + ".stamp")
		if err != nil {
			t.Fatalf("the real tools cache has no stamp for %s: %v", tool.Name, err)
		}
		os.WriteFile(dst+".stamp", stamp, 0o644)
		if tool.Name != name {
			if err := os.Symlink(src, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		damaged = tool
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b[:len(b)/2], 0o755); err != nil {
			t.Fatal(err)
		}
		mod := filepath.Join("src", tool.Module.Name)
		if err := os.CopyFS(filepath.Join(c.Dir, mod), os.DirFS(filepath.Join(real.Dir, mod))); err != nil {
			t.Fatal(err)
		}
	}
	// The sim cluster's storage provisioner is built into the cache too.
	provs, _ := filepath.Glob(filepath.Join(real.Dir, "sim-provisioner-*"))
	for _, d := range provs {
		if err := os.Symlink(d, filepath.Join(c.Dir, filepath.Base(d))); err != nil {
			t.Fatal(err)
		}
	}
	return c, damaged
}

// A snapshot maps every object of the cluster ("Kind.group ns/name") to
// a digest of what a run could change: the object without its status and
// without the bookkeeping the API server keeps (resourceVersion,
// managedFields). Controllers write status all the time without any run:
// a CronJob's last schedule, the ResourceQuota usage a Job it starts adds
// to (the backups run at 02:00-02:40, auth-token-manager every 6 hours).
// Further exceptions, which change without any run:
//   - Leases are left out: node heartbeats (kube-node-lease), the leader
//     elections of the controller manager and scheduler, the API server's
//     identity leases, and the engine's own lock (Lease
//     kube-system/alt-platform-deploy), which every run that reaches the
//     cluster creates and deletes again, refused or not.
//   - Events (core and events.k8s.io) are left out: controllers write them
//     all the time.
//   - Nodes count by existence only: kwok updates them (its heartbeat)
//     about every minute.
//   - The Jobs CronJobs make and those Jobs' Pods are left out.
type snapshot map[string]string

type snapshotter struct {
	k   *engine.Kube
	gvr []schema.GroupVersionResource
}

func newSnapshotter(t *testing.T, k *engine.Kube) *snapshotter {
	lists, err := k.Client.Discovery().ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		t.Fatal(err)
	}
	s := &snapshotter{k: k}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.APIResources {
			switch {
			case strings.Contains(r.Name, "/"), !slices.Contains(r.Verbs, "list"):
			case r.Name == "leases", r.Name == "events", r.Name == "componentstatuses":
			default:
				s.gvr = append(s.gvr, gv.WithResource(r.Name))
			}
		}
	}
	return s
}

func (s *snapshotter) take(t *testing.T) snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var objs []unstructured.Unstructured
	for _, gvr := range s.gvr {
		l, err := s.k.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", gvr, err)
		}
		objs = append(objs, l.Items...)
	}
	ownedBy := func(o unstructured.Unstructured, kind string) (string, bool) {
		for _, r := range o.GetOwnerReferences() {
			if r.Kind == kind {
				return o.GetNamespace() + "/" + r.Name, true
			}
		}
		return "", false
	}
	cronJobs := map[string]bool{} // ns/name of the Jobs CronJobs made
	for _, o := range objs {
		if _, ok := ownedBy(o, "CronJob"); ok && o.GetKind() == "Job" {
			cronJobs[o.GetNamespace()+"/"+o.GetName()] = true
		}
	}
	snap := snapshot{}
	for _, o := range objs {
		if _, ok := ownedBy(o, "CronJob"); ok {
			continue
		}
		if job, ok := ownedBy(o, "Job"); ok && cronJobs[job] {
			continue
		}
		gvk := o.GroupVersionKind()
		key := fmt.Sprintf("%s.%s %s/%s", gvk.Kind, gvk.Group, o.GetNamespace(), o.GetName())
		if gvk.Kind == "Node" {
			snap[key] = "exists"
			continue
		}
		c := o.DeepCopy()
		unstructured.RemoveNestedField(c.Object, "status")
		c.SetResourceVersion("")
		c.SetManagedFields(nil)
		b, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		sum := sha256.Sum256(b)
		snap[key] = fmt.Sprintf("generation %d, digest %x", o.GetGeneration(), sum[:8])
	}
	return snap
}

// diffSnapshots lists what was created, deleted or changed.
func diffSnapshots(before, after snapshot) []string {
	var d []string
	for k, v := range after {
		switch old, ok := before[k]; {
		case !ok:
			d = append(d, "created "+k)
		case old != v:
			d = append(d, fmt.Sprintf("changed %s (%s -> %s)", k, old, v))
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			d = append(d, "deleted "+k)
		}
	}
	sort.Strings(d)
	return d
}
