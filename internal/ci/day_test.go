package ci

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/standin"
)

// The source change ci makes is a version in the stand-in's own config,
// every other field kept.
func TestSetStandinVersion(t *testing.T) {
	tree := t.TempDir()
	path := filepath.Join(tree, "alt-backend", "standin", "config.json")
	os.MkdirAll(filepath.Dir(path), 0o755)
	b, _ := json.Marshal(standin.Config{Name: "alt-backend", Image: "kaikei/alt-backend", Commands: []standin.Command{{Mode: "serve"}}})
	os.WriteFile(path, b, 0o644)
	if err := setStandinVersion(tree, "alt-backend", "v2"); err != nil {
		t.Fatal(err)
	}
	var c standin.Config
	b, _ = os.ReadFile(path)
	if err := json.Unmarshal(b, &c); err != nil || c.Version != "v2" || c.Name != "alt-backend" || len(c.Commands) != 1 {
		t.Errorf("config after: %s (%v)", b, err)
	}
	if err := setStandinVersion(tree, "nosuch", "v2"); err == nil {
		t.Error("a missing context was not an error")
	}
}

// awaitVersion asks again while the old version (or a gateway error)
// answers, returns the new one, and gives up naming the last answer.
func TestAwaitVersion(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case n == 1:
			http.Error(w, "upstream", http.StatusBadGateway)
		case n == 2:
			json.NewEncoder(w).Encode(standin.Echo{Standin: "alt-backend"})
		default:
			json.NewEncoder(w).Encode(standin.Echo{Standin: "alt-backend", Version: "v2"})
		}
	}))
	defer srv.Close()
	e, err := awaitVersion(t.Context(), srv.URL+"/x", "alt-backend", "v2", 20*time.Second)
	if err != nil || e.Version != "v2" || calls.Load() != 3 {
		t.Fatalf("%+v, %v after %d calls", e, err, calls.Load())
	}
	_, err = awaitVersion(t.Context(), srv.URL+"/x", "alt-backend", "v3", 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `alt-backend answering with version "v3"`) || !strings.Contains(err.Error(), `"version":"v2"`) {
		t.Errorf("giving up: %v", err)
	}
}
