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
	want := Placeholders("dev", []string{"web", "api"})
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

// A release needs the artifacts its templates name, whichever IMAGE_*
// variable names them, and no other: alt-backend's image name is a prefix
// of its sidecar's, and only the whole variable counts.
func TestReleaseImages(t *testing.T) {
	arts := []Artifact{{Image: "kaikei/alt-backend"}, {Image: "kaikei/alt-backend-sidecar"}, {Image: "other"}}
	for _, c := range []struct {
		templates map[string]string
		want      string
	}{
		{map[string]string{"image.repository": "{{.IMAGE_REPO_kaikei_alt_backend}}", "image.tag": "{{.IMAGE_TAG_kaikei_alt_backend}}"}, "kaikei/alt-backend"},
		{map[string]string{"image": "{{ .IMAGE_FULLY_QUALIFIED_kaikei_alt_backend_sidecar }}"}, "kaikei/alt-backend-sidecar"},
		{map[string]string{"a": "{{.IMAGE_DIGEST_other}}", "b": "{{.IMAGE_REPO_kaikei_alt_backend}}"}, "kaikei/alt-backend other"},
		{map[string]string{"image.tag": "1.2.3"}, ""},
		{nil, ""},
	} {
		if got := strings.Join(Release{Templates: c.templates}.Images(arts), " "); got != c.want {
			t.Errorf("%v: %q, want %q", c.templates, got, c.want)
		}
	}
}

// A view keeps each artifact and release entry whole, fields this model
// does not name included, as the profile in force chose them.
func TestViewKeepsRawEntries(t *testing.T) {
	s, err := Load("../..")
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Layer("alt-core-services").View("prod", nil)
	if err != nil {
		t.Fatal(err)
	}
	var backend *Release
	for i := range v.Releases {
		if v.Releases[i].Name == "alt-backend" {
			backend = &v.Releases[i]
		}
	}
	if backend == nil {
		t.Fatal("no alt-backend release in 04's prod view")
	}
	vf, _ := backend.Raw["valuesFiles"].([]any)
	if backend.Raw["chartPath"] != "../../charts/service" || len(vf) != 2 || vf[1] != "values/alt-backend-prod.yaml" {
		t.Errorf("raw prod release: %v", backend.Raw)
	}
	if len(v.Artifacts) == 0 || v.Artifacts[0].Raw["context"] != v.Artifacts[0].Context || v.Artifacts[0].Raw["docker"] == nil {
		t.Errorf("raw artifact: %+v", v.Artifacts)
	}
}
