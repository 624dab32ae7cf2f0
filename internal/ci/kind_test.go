package ci

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The crash test passes only when the diagnosis names the pod, its last
// state, the exit status and the probe failure; each missing part is named.
func TestDiagnosed(t *testing.T) {
	full := `   Deployment alt-apps/alt-backend: InProgress
     pod alt-backend-5d9c7b6f4-x2x9q: container alt-backend not ready (restarts 2); container alt-backend last state: terminated Error exit 3 (restarts 2): alt-backend: crashing as told
       event: Warning Unhealthy: Startup probe failed: HTTP probe failed with statuscode: 503`
	if err := diagnosed(full); err != nil {
		t.Fatalf("a full diagnosis was refused: %v", err)
	}
	err := diagnosed(strings.ReplaceAll(full, "Startup probe failed: HTTP probe failed", "Back-off restarting"))
	if err == nil || !strings.Contains(err.Error(), "the probe failure event") {
		t.Fatalf("a diagnosis without the probe failure passed: %v", err)
	}
	err = diagnosed("layer alt-core-services failed: timeout")
	for _, want := range []string{"the pod", "last state", "exit status", "probe failure"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q named in: %v", want, err)
		}
	}
}

// A gateway answer (502) is asked again until the upstream answers; other
// answers are final at once; patience ends the retries.
func TestRetryGateway(t *testing.T) {
	calls := 0
	get := func(string) (int, []byte, error) {
		calls++
		if calls < 3 {
			return 502, []byte("bad gateway"), nil
		}
		return 200, []byte("ok"), nil
	}
	if code, body, err := retryGateway(get, 10*time.Second)("/x"); code != 200 || string(body) != "ok" || err != nil || calls != 3 {
		t.Errorf("after two 502s: %d %q %v, %d calls", code, body, err, calls)
	}
	calls = 0
	notFound := func(string) (int, []byte, error) { calls++; return 404, nil, nil }
	if code, _, _ := retryGateway(notFound, 10*time.Second)("/x"); code != 404 || calls != 1 {
		t.Errorf("a 404 was asked again: %d, %d calls", code, calls)
	}
	calls = 0
	down := func(string) (int, []byte, error) { calls++; return 0, nil, errors.New("connection refused") }
	start := time.Now()
	if _, _, err := retryGateway(down, 1500*time.Millisecond)("/x"); err == nil || calls < 2 || time.Since(start) > 5*time.Second {
		t.Errorf("a refused connection: %v after %d calls in %s", err, calls, time.Since(start))
	}
}

// ci runs a copy of its own executable for its deploy passes: another
// `go run mage.go` may rebuild the file Mage ran while ci lasts.
func TestGateRunsACopyOfItsOwnExecutable(t *testing.T) {
	repo := t.TempDir()
	self := filepath.Join(t.TempDir(), "targets")
	if err := os.WriteFile(self, []byte("#!/bin/sh\necho first\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	g, err := newGate(Options{Repo: repo, Self: self})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.o.Self, filepath.Join(repo, Dir)) {
		t.Fatalf("the gate runs %s, not a copy in the checkout's %s", g.o.Self, Dir)
	}
	os.WriteFile(self, []byte("#!/bin/sh\necho second\n"), 0o755) // rebuilt meanwhile
	out, err := exec.Command(g.o.Self).Output()
	if err != nil || string(out) != "first\n" {
		t.Fatalf("the copy ran %q (%v), want the executable as it was when ci started", out, err)
	}
	if _, err := newGate(Options{Repo: repo, Self: filepath.Join(repo, "missing")}); err == nil || !strings.Contains(err.Error(), "own executable") {
		t.Fatalf("a missing executable: %v", err)
	}
}
