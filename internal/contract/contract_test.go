package contract

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepositoryContract loads the real contract and checks that the
// README's set-up instructions name the pinned commit.
func TestRepositoryContract(t *testing.T) {
	repo := filepath.Join("..", "..")
	c, err := Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) == 0 || len(c.Routes) == 0 {
		t.Fatalf("%s: no services or routes", File)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "checkout "+c.Alt.Commit) {
		t.Errorf("README.md does not say `git checkout %s`, the pin of %s", c.Alt.Commit, File)
	}
}

// TestLoadRefuses: an unknown field, a short commit and a duplicate release
// are errors naming the file and the field.
func TestLoadRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ text, want string }{
		"unknown field": {"alt: {commit: " + strings.Repeat("a", 40) + "}\nservicez: []\n", `unknown field "servicez"`},
		"short commit":  {"alt: {commit: abc}\n", "alt.commit: want the 40-hex-digit commit"},
		"duplicate": {"alt: {commit: " + strings.Repeat("a", 40) + "}\nservices:\n" +
			"- {release: a, image: i, context: c, dockerfile: d, source: s, ports: [], health: [], env: []}\n" +
			"- {release: a, image: j, context: c, dockerfile: d, source: s, ports: [], health: [], env: []}\n", "services[1]: release a listed twice"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, File), []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), File) {
				t.Fatalf("want an error naming %s and %q, got %v", File, tc.want, err)
			}
		})
	}
}
