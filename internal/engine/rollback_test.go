package engine_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// rollback on sim: refused with nothing to return to, naming what exists;
// after a changed deploy, the layer's releases go back to the revisions
// its previous verified deploy verified, are verified, and the record
// says so; the next deploy of the files deploys them again.
func TestRollback(t *testing.T) {
	p := newPlatform(t)
	if _, err := p.mage(nil, "sim:up"); err != nil {
		t.Fatalf("sim:up: %v", err)
	}
	out, err := p.mage(nil, "rollback", "-layer=operations")
	if err == nil || !strings.Contains(out, "rollback of alt-operations refused") || !strings.Contains(out, "none is recorded") {
		t.Fatalf("a rollback with nothing deployed: %v, want a refusal saying none is recorded", err)
	}
	if _, err := p.mage(nil, "operations"); err != nil {
		t.Fatalf("operations: %v", err)
	}
	out, err = p.mage(nil, "rollback", "-layer=08")
	if err == nil || !strings.Contains(out, "no previous verified deploy") || !strings.Contains(out, "(current)") {
		t.Fatalf("a rollback after one deploy: %v, want a refusal naming the current deploy", err)
	}
	retention := func() string {
		return regexp.MustCompile(`retention\.time=(\w+)`).FindString(p.kubectl("get", "statefulsets", "-n", "alt-observability", "-o", "jsonpath={..args}"))
	}
	orig := retention()
	if orig == "" || orig == "retention.time=9d" {
		t.Fatalf("prometheus runs with %q; the test changes it to 9d", orig)
	}
	before := p.revisions()

	values := filepath.Join(p.dir, "skaffold", "08-operations", "values", "monitoring.yaml")
	b, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	changed := regexp.MustCompile(`(?m)^(\s*retention:\s*).*$`).ReplaceAllString(string(b), "${1}9d")
	os.WriteFile(values, []byte(changed), 0o644)
	out, err = p.mage(nil, "operations")
	if err != nil {
		t.Fatalf("operations after a change: %v", err)
	}
	if got := actions(out)["alt-operations"]; got != "deployed" {
		t.Fatalf("alt-operations %q after a change, want deployed", got)
	}
	if got := retention(); got != "retention.time=9d" {
		t.Fatalf("prometheus runs with %q after the change, want 9d", got)
	}

	out, err = p.mage(nil, "rollback", "-layer=operations")
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	for _, want := range []string{"helm rollback alt-observability/monitoring to revision " + strings.Fields(before["alt-observability/monitoring"])[0], "alt-operations: verify", "is back at its deploy of"} {
		if !strings.Contains(out, want) {
			t.Errorf("the rollback does not say %q", want)
		}
	}
	if got := retention(); got != orig {
		t.Errorf("prometheus runs with %q after the rollback, want %q again", got, orig)
	}
	after := p.revisions()
	for rel, rev := range after {
		if !strings.HasSuffix(rev, "deployed") {
			t.Errorf("release %s after the rollback: %s", rel, rev)
		}
	}
	if atoi(strings.Fields(after["alt-observability/monitoring"])[0]) != atoi(strings.Fields(before["alt-observability/monitoring"])[0])+2 {
		t.Errorf("monitoring revisions: before %s, after %s; want a new revision made by the rollback", before["alt-observability/monitoring"], after["alt-observability/monitoring"])
	}
	// The files still say 9d: the next deploy deploys them again.
	out, err = p.mage(nil, "operations")
	if err != nil {
		t.Fatalf("operations after the rollback: %v", err)
	}
	if got := actions(out)["alt-operations"]; got != "deployed" || !strings.Contains(out, "values/monitoring.yaml") {
		t.Errorf("alt-operations %q after the rollback, want deployed naming the changed values file", got)
	}
	if got := retention(); got != "retention.time=9d" {
		t.Errorf("prometheus runs with %q after redeploying the files, want 9d", got)
	}
}
