package check

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/stack"
	"github.com/alt-platform/orchestration/internal/tools"
)

// toolCache is the pinned tools cache (ALT_TOOLS_DIR or its default).
func toolCache(t *testing.T) *tools.Cache {
	t.Helper()
	env := func(k string) (string, bool) {
		switch k {
		case "ALT_TOOLS_DIR", "XDG_CACHE_HOME", "HOME":
			return os.LookupEnv(k)
		}
		return "", false
	}
	cfg, err := config.Load(env, func() bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	return &tools.Cache{Dir: cfg.ToolsDir, Runner: &run.Runner{}}
}

// tool returns the path of a pinned tool, skipping the test when it is not
// built (go run mage.go tools:install builds it).
func tool(t *testing.T, name string) (string, *run.Runner) {
	t.Helper()
	c := toolCache(t)
	tl, err := tools.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Installed(tl) {
		t.Skipf("%s %s is not in the tools cache %s (go run mage.go tools:install)", name, tl.Version, c.Dir)
	}
	return c.Path(tl), &run.Runner{Env: c.Env(os.DevNull)}
}

// fixture copies testdata/repo into a temporary folder (its scripts/ is a
// link to the repository's) and applies edits:
// file → {old, new} replacements (old "" appends new; a missing file is
// created).
func fixture(t *testing.T, edits ...edit) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", "repo")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if d.Type()&fs.ModeSymlink != 0 { // scripts/: the repository's own
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(target)
			if err != nil {
				return err
			}
			return os.Symlink(abs, filepath.Join(dst, rel))
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	applyEdits(t, dst, edits)
	return dst
}

// applyEdits changes files under dir: file → {old, new} replacements (old
// "" appends new; a missing file is created; old must occur).
func applyEdits(t *testing.T, dir string, edits []edit) {
	t.Helper()
	for _, e := range edits {
		p := filepath.Join(dir, e.file)
		b, _ := os.ReadFile(p)
		s := string(b)
		switch {
		case e.old == "":
			s += e.new
		case !strings.Contains(s, e.old):
			t.Fatalf("edit: %s has no %q", e.file, e.old)
		default:
			s = strings.Replace(s, e.old, e.new, 1)
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if fi, err := os.Stat(p); err == nil {
			mode = fi.Mode().Perm() // a script stays executable
		}
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
}

type edit struct{ file, old, new string }

func loadStack(t *testing.T, repo string) *stack.Stack {
	t.Helper()
	s, err := stack.Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixtureGraph is the fixture's layer graph: alt-app needs alt-base.
func fixtureGraph() *stack.Graph {
	return &stack.Graph{
		Target: map[string]string{"alt-base": "Base", "alt-app": "App"},
		Needs:  map[string][]string{"alt-base": nil, "alt-app": {"alt-base"}},
	}
}

// in is where in-memory objects come from.
type in struct {
	profile, layer, release, chart, ns string
}

// objects parses Helm-like output ("# Source: <chart>/templates/x.yaml"
// comments) into objects of one release.
func objects(t *testing.T, w in, manifests string) []*Object {
	t.Helper()
	if w.profile == "" {
		w.profile = "dev"
	}
	objs, err := parseManifests(manifests, w.chart, w.ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		o.Profile, o.Layer, o.Release = w.profile, w.layer, w.release
	}
	return objs
}

// wantErr asserts err mentions every want (nil want: err must be nil).
func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("want no problem, got:\n%v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want a problem mentioning %q, got none", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("problem does not mention %q:\n%v", w, err)
		}
	}
}
