package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageVars(t *testing.T) {
	vars := map[string]string{}
	ImageVars(vars, "alt-backend", "localhost:5001/alt-backend:abc123@sha256:ff")
	want := map[string]string{
		"IMAGE_REPO_alt_backend":            "localhost:5001/alt-backend",
		"IMAGE_TAG_alt_backend":             "abc123",
		"IMAGE_DIGEST_alt_backend":          "sha256:ff",
		"IMAGE_FULLY_QUALIFIED_alt_backend": "localhost:5001/alt-backend:abc123@sha256:ff",
		"IMAGE_DOMAIN_alt_backend":          "localhost:5001",
		"IMAGE_REPO_NO_DOMAIN_alt_backend":  "alt-backend",
	}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
	ImageVars(vars, "web", "web:sim")
	if vars["IMAGE_REPO_web"] != "web" || vars["IMAGE_TAG_web"] != "sim" || vars["IMAGE_DOMAIN_web"] != "" {
		t.Errorf("plain ref: %v", vars)
	}
}

func TestReleaseSets(t *testing.T) {
	r := Release{Name: "app", Templates: map[string]string{
		"image.tag":        "{{.IMAGE_TAG_app}}",
		"image.repository": "{{ .IMAGE_REPO_app }}",
	}}
	sets, err := r.Sets(map[string]string{"IMAGE_REPO_app": "app", "IMAGE_TAG_app": "sim"})
	if err != nil || strings.Join(sets, " ") != "image.repository=app image.tag=sim" {
		t.Fatalf("sets = %v, %v", sets, err)
	}
	_, err = r.Sets(map[string]string{"IMAGE_REPO_app": "app"})
	if err == nil || !strings.Contains(err.Error(), "setValueTemplates[image.tag]: {{.IMAGE_TAG_app}} names no variable") {
		t.Errorf("missing variable: %v", err)
	}
	r.Templates = map[string]string{"x": `{{ default "a" .B }}`}
	if _, err := r.Sets(map[string]string{}); err == nil || !strings.Contains(err.Error(), "only plain {{.NAME}}") {
		t.Errorf("pipeline: %v", err)
	}
}

func TestArtifactsFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build-artifacts.json")
	want := Placeholders([]string{"web", "api"})
	want["db"] = "localhost:5001/db:abc@sha256:0123"
	if err := Artifacts(want).Write(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadArtifacts(path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(map[string]string(got)) != fmt.Sprint(want) || got["web"] != "web:sim" {
		t.Fatalf("read back %v, wrote %v", got, want)
	}
	os.WriteFile(path, []byte("builds: ["), 0o644)
	if _, err := ReadArtifacts(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a broken file: want an error naming it, got %v", err)
	}
}
