package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/secrets"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// stagingEnv makes an age key for this test only (never committed), and
// the variables of a staging (or prod) run on the copy's sim cluster
// through the tests' switch of the profile guard.
type stagingEnv struct {
	profile string
	id      *age.X25519Identity
	env     []string
	vals    map[string]map[string]string // Secret → key → value
}

func newProfileEnv(t *testing.T, profile string, needs []secrets.Need) *stagingEnv {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &stagingEnv{profile: profile, id: id, vals: map[string]map[string]string{}}
	s.env = []string{"ALT_PROFILE=" + profile, "ALT_TEST_SIM_PROFILES=1", "ALT_REGISTRY=registry.invalid/alt",
		"SOPS_AGE_KEY_FILE=" + keys, "SOPS_AGE_KEY=", "XDG_CONFIG_HOME=" + t.TempDir()}
	for _, n := range needs {
		s.vals[n.Name] = map[string]string{}
		for _, k := range n.Keys {
			b := make([]byte, 12)
			rand.Read(b)
			s.vals[n.Name][k] = "h15-" + hex.EncodeToString(b)
		}
	}
	return s
}

// write encrypts the values, without the keys of skip ("secret/key"),
// into the copy's secrets/<profile>.sops.yaml.
func (s *stagingEnv) write(t *testing.T, p *platform, skip ...string) {
	t.Helper()
	var b strings.Builder
	names := make([]string, 0, len(s.vals))
	for n := range s.vals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s:\n", n)
		for k, v := range s.vals[n] {
			if !contains(skip, n+"/"+k) {
				fmt.Fprintf(&b, "  %s: %q\n", k, v)
			}
		}
	}
	enc, err := secrets.Encrypt([]byte(b.String()), []string{s.id.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(p.dir, secrets.File(s.profile))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, enc, 0o644); err != nil {
		t.Fatal(err)
	}
}

// leaks names every value of the test found in text.
func (s *stagingEnv) leaks(text string) []string {
	var found []string
	for n, kv := range s.vals {
		for k, v := range kv {
			if strings.Contains(text, v) {
				found = append(found, n+"/"+k)
			}
		}
	}
	return found
}

// fileNeeds are the contract's Secrets that an environment's SOPS file
// provides.
func fileNeeds(t *testing.T, p *platform) []secrets.Need {
	t.Helper()
	all, err := secrets.ReadContract(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	var needs []secrets.Need
	for _, n := range all {
		if n.FromSource() {
			needs = append(needs, n)
		}
	}
	return needs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A staging deploy to a sim cluster takes every Secret the contract lists
// from the SOPS file (decrypted with a key this test made) into every
// namespace; a second run changes nothing; a key missing from the file is
// named before any layer deploys; no value appears in any output or file.
func TestStagingSecretsFromSOPS(t *testing.T) {
	p := newPlatform(t)
	needs := fileNeeds(t, p)
	s := newProfileEnv(t, "staging", needs)
	var outputs []string
	run := func(targets ...string) (string, error) {
		out, err := p.mage(s.env, targets...)
		outputs = append(outputs, out)
		return out, err
	}
	if _, err := p.mage(nil, "sim:up"); err != nil {
		t.Fatalf("sim:up: %v", err)
	}

	// A key missing from the file: named, and nothing deployed.
	s.write(t, p, "grafana-admin/admin-password", "kratos-secrets/cipher")
	out, err := run("all")
	if err == nil {
		t.Fatal("a staging run with a file lacking keys succeeded")
	}
	for _, want := range []string{"secrets/staging.sops.yaml lacks", "grafana-admin (admin-password)", "kratos-secrets (cipher)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q", want)
		}
	}
	if revs := p.revisions(); len(revs) > 0 {
		t.Errorf("a refused run deployed releases: %v", revs)
	}
	if ns := p.kubectl("get", "namespaces", "-o", "name"); strings.Contains(ns, "alt-") {
		t.Errorf("a refused run created namespaces:\n%s", ns)
	}

	// The whole file: every layer deploys, every Secret in every namespace.
	s.write(t, p)
	out, err = run("infrastructure")
	if err != nil {
		t.Fatalf("staging infrastructure failed: %v", err)
	}
	infra := out
	// meilisearch's keys Job makes search-indexer's scoped key in staging
	// (docs/contract.md: "cluster"); on sim no container runs, so the test
	// does what the Job would do. Not a value of the file.
	p.kubectl("create", "secret", "generic", "meilisearch-search-indexer-key", "-n", "alt-processing", "--from-literal=api-key=made-as-the-keys-job-would")
	out, err = run("all")
	if err != nil {
		t.Fatalf("staging all failed: %v", err)
	}
	want := allActions("deployed")
	want["alt-foundation"], want["alt-infrastructure"] = "unchanged", "unchanged"
	expect(t, out, want)
	out = infra + out
	for _, want := range []string{"TEST SWITCH ALT_TEST_SIM_PROFILES=1", "every compared copy matches the file by hash"} {
		if !strings.Contains(out, want) {
			t.Errorf("the run does not say %q", want)
		}
	}
	k, err := engine.Connect(context.Background(), p.kube, "")
	if err != nil {
		t.Fatal(err)
	}
	versions := func() map[string]string {
		rv := map[string]string{}
		copies := 0
		for _, n := range needs {
			for _, ns := range n.Namespaces {
				sec, err := k.Client.CoreV1().Secrets(ns).Get(context.Background(), n.Name, metav1.GetOptions{})
				if err != nil {
					t.Errorf("Secret %s/%s: %v", ns, n.Name, err)
					continue
				}
				copies++
				for _, key := range n.Keys {
					if string(sec.Data[key]) != s.vals[n.Name][key] {
						t.Errorf("Secret %s/%s: key %s does not hold the file's value", ns, n.Name, key)
					}
				}
				if len(sec.Data) != len(n.Keys) {
					t.Errorf("Secret %s/%s has %d keys, the contract names %d", ns, n.Name, len(sec.Data), len(n.Keys))
				}
				rv[ns+"/"+n.Name] = sec.ResourceVersion
			}
		}
		if copies < 20 {
			t.Errorf("%d copies of the contract's Secrets, want every one", copies)
		}
		return rv
	}
	rv := versions()
	revs := p.revisions()

	// Again: nothing changes.
	out, err = run("all")
	if err != nil {
		t.Fatalf("second staging all failed: %v", err)
	}
	expect(t, out, allActions("unchanged"))
	if again := versions(); !equal(rv, again) {
		t.Errorf("a second run rewrote Secrets:\nbefore %v\nafter  %v", rv, again)
	}
	if again := p.revisions(); !equal(revs, again) {
		t.Errorf("a second run made Helm revisions:\nbefore %v\nafter  %v", revs, again)
	}

	// A copy changed in the cluster is written back from the file, and
	// its layer deployed again.
	p.kubectl("patch", "secret", "grafana-admin", "-n", "alt-observability", "--type=merge", "-p", `{"stringData":{"admin-password":"changed-by-hand"}}`)
	out, err = run("operations")
	if err != nil {
		t.Fatalf("operations after a hand edit failed: %v", err)
	}
	if !strings.Contains(out, "Secrets updated from secrets/staging.sops.yaml: alt-observability/grafana-admin") {
		t.Error("the run does not say it wrote the edited Secret back")
	}
	versions()

	// No value in any output, nor in any file of the copy.
	for i, o := range outputs {
		for _, line := range strings.Split(o, "\n") {
			if l := s.leaks(line); len(l) > 0 {
				t.Errorf("output of run %d shows the value of %v: line %q", i+1, l, line)
			}
		}
	}
	filepath.WalkDir(p.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(path, string(filepath.Separator)+"sim"+string(filepath.Separator)) {
			return nil // the sim's etcd holds the Secrets, as any cluster does
		}
		if b, err := os.ReadFile(path); err == nil {
			if l := s.leaks(string(b)); len(l) > 0 {
				t.Errorf("%s holds the value of %v", path, l)
			}
		}
		return nil
	})
}

func allActions(action string) map[string]string { return all(action) }
