package ci

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/ui"
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

// A failed check's reason is printed again after the table, where the tail
// of a long log shows it; a pass's per-layer rows are not counted twice.
func TestFinishRepeatsTheReasonsLast(t *testing.T) {
	var out bytes.Buffer
	ui.SetOutput(&out)
	defer ui.SetOutput(os.Stderr)
	g := &gate{o: Options{Repo: t.TempDir()}}
	g.add("kind", "watch stops on Ctrl-C", func() error { return errors.New("unhealthy after watch: pod x: container y not ready") })
	g.add("kind: dev", "alt-foundation", func() error { return errors.New("the same failure, per layer") })
	g.add("tests", "go test ./...", func() error { return nil })
	err := g.finish(nil, nil)
	if err == nil || !strings.Contains(err.Error(), "1 check(s) failed: watch stops on Ctrl-C") {
		t.Fatalf("finish: %v", err)
	}
	s := out.String()
	table, reason := strings.Index(s, "RESULT"), strings.LastIndex(s, "unhealthy after watch: pod x")
	if table < 0 || reason < table {
		t.Fatalf("the reason is not printed after the table:\n%s", s)
	}
}

// go test's failures are named by their test and package lines.
func TestFailedTests(t *testing.T) {
	out := "=== RUN   TestA\n--- FAIL: TestDayToDay (26.73s)\n    --- FAIL: TestDayToDay/status (0.05s)\n        day_test.go:67: boom\nFAIL\nFAIL\tgithub.com/x/engine\t414.037s\nok  \tgithub.com/x/kind\t45.394s\n"
	got := strings.Join(failedTests(out), "|")
	want := "--- FAIL: TestDayToDay (26.73s)|    --- FAIL: TestDayToDay/status (0.05s)|FAIL\tgithub.com/x/engine\t414.037s"
	if got != want {
		t.Fatalf("failedTests = %q, want %q", got, want)
	}
}
