package ci

import (
	"strings"
	"testing"
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
