package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A release file is refused, naming the file and field, unless staging
// wrote it and every reference is pinned by digest.
func TestReadRelease(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("0f", 32)
	for _, c := range []struct {
		name, body string
		want       []string // "" : accepted
	}{
		{"pinned", `{"profile":"staging","images":{"kaikei/alt-backend":"r.example/alt-backend:abc` + digest + `"}}`, nil},
		{"a tag", `{"profile":"staging","images":{"kaikei/alt-backend":"r.example/alt-backend:abc"}}`,
			[]string{"images.kaikei/alt-backend", `"r.example/alt-backend:abc" is not pinned by digest`}},
		{"a short digest", `{"profile":"staging","images":{"a":"a@sha256:0f"}}`, []string{"images.a"}},
		{"dev's", `{"profile":"dev","images":{}}`, []string{`profile "dev"`}},
		{"not JSON", `images: {}`, []string{"not a release file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "staging.json")
			os.WriteFile(path, []byte(c.body), 0o644)
			_, err := ReadRelease(path)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(c.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: does not say %q", err, w)
				}
			}
		})
	}
	if _, err := ReadRelease(filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "no release file") {
		t.Errorf("a missing file: %v", err)
	}
}
