package tools

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/run"
)

func TestWrapperModule(t *testing.T) {
	dir := t.TempDir()
	k, _ := Lookup("kube-apiserver")
	if err := writeWrapper(dir, k.Module, k.Package); err != nil {
		t.Fatal(err)
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	for _, want := range []string{"k8s.io/kubernetes v1.34.2", "k8s.io/client-go => k8s.io/client-go v0.34.2"} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, gomod)
		}
	}
	imports, _ := os.ReadFile(filepath.Join(dir, "tools.go"))
	for _, want := range []string{"k8s.io/kubernetes/cmd/kubectl", "k8s.io/kubernetes/cmd/kube-scheduler"} {
		if !strings.Contains(string(imports), want) {
			t.Errorf("tools.go lacks %q", want)
		}
	}
	// A go.sum survives a rewrite with the same requirements, not a change.
	os.WriteFile(filepath.Join(dir, "go.sum"), []byte("x"), 0o644)
	writeWrapper(dir, k.Module, k.Package)
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); err != nil {
		t.Error("go.sum removed although requirements are the same")
	}
	changed := *k.Module
	changed.Require = []string{"k8s.io/kubernetes v1.34.3"}
	writeWrapper(dir, &changed, k.Package)
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); err == nil {
		t.Error("go.sum kept although requirements changed")
	}
}

func TestStampDetectsDamage(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	tool, _ := Lookup("helm")
	bin := c.Path(tool)
	os.MkdirAll(filepath.Dir(bin), 0o755)
	os.WriteFile(bin, []byte("binary"), 0o755)
	if c.Installed(tool) {
		t.Fatal("installed without a stamp")
	}
	fi, _ := os.Stat(bin)
	os.WriteFile(stampOf(bin), []byte(stampLine(tool, fi)), 0o644)
	if !c.Installed(tool) {
		t.Fatal("not installed with a matching stamp")
	}
	time.Sleep(10 * time.Millisecond)
	os.WriteFile(bin, []byte("corrupted!"), 0o755)
	if c.Installed(tool) {
		t.Fatal("a changed binary still counts as installed")
	}
}

func TestLookupUnknown(t *testing.T) {
	if _, err := Lookup("kustomize"); err == nil || !strings.Contains(err.Error(), "pinned tools: helm") {
		t.Errorf("err = %v", err)
	}
}

// TestEnsureReuses builds (or finds) helm in the real cache and proves the
// second call reuses it.
func TestEnsureReuses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds helm when it is not cached")
	}
	cfg, err := config.FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cache{Dir: cfg.ToolsDir, Runner: &run.Runner{}}
	ctx := context.Background()
	paths, err := c.Ensure(ctx, "helm")
	if err != nil {
		t.Fatal(err)
	}
	out, err := (&run.Runner{Env: c.Env("/nonexistent")}).Output(ctx, paths["helm"], "version", "--short")
	if err != nil || !strings.HasPrefix(out, "v3.22.0") {
		t.Fatalf("helm version = %q, %v", out, err)
	}
	// Present tools are reused, not built again: the binary is untouched.
	helm, _ := Lookup("helm")
	before, err := os.Stat(c.Path(helm))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Ensure(ctx, Deploy...); err != nil {
		t.Fatal(err)
	}
	t.Logf("second Ensure of %v: %s", Deploy, time.Since(start))
	if after, err := os.Stat(c.Path(helm)); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("a present helm was built again (%v -> %v, %v)", before.ModTime(), after.ModTime(), err)
	}
}

// The cloud CLIs' variables reach a tool (a kubeconfig's exec plugin runs
// inside it and reads them); other variables of the caller do not.
func TestEnvKeepsCloudCredentials(t *testing.T) {
	t.Setenv("AWS_PROFILE", "eks-admin")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/creds.json")
	t.Setenv("CLOUDSDK_CORE_PROJECT", "alt")
	t.Setenv("AZURE_CONFIG_DIR", "/az")
	t.Setenv("USE_GKE_GCLOUD_AUTH_PLUGIN", "True")
	t.Setenv("ALT_SOMETHING_ELSE", "x")
	c := &Cache{Dir: t.TempDir()}
	out, err := (&run.Runner{Env: c.Env("/k")}).Output(context.Background(), "env")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AWS_PROFILE=eks-admin", "GOOGLE_APPLICATION_CREDENTIALS=/creds.json",
		"CLOUDSDK_CORE_PROJECT=alt", "AZURE_CONFIG_DIR=/az", "USE_GKE_GCLOUD_AUTH_PLUGIN=True", "KUBECONFIG=/k"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("the tool's environment lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ALT_SOMETHING_ELSE") {
		t.Errorf("the tool's environment holds a variable it should not:\n%s", out)
	}
}
