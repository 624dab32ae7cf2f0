package engine

import (
	"fmt"
	"os"
	"testing"

	"github.com/alt-platform/orchestration/internal/run"
)

func TestDeadHere(t *testing.T) {
	host, _ := os.Hostname()
	if deadHere(Holder("all")) {
		t.Error("this live run counts as dead")
	}
	if !deadHere(fmt.Sprintf("me@%s pid %d running \"all\" since now", host, 1<<22-3)) {
		t.Error("a run whose pid does not exist counts as alive")
	}
	if deadHere("ops@another-host pid 4242 running \"all\" since now") {
		t.Error("a run on another machine counts as dead")
	}
}

func TestSkaffoldReason(t *testing.T) {
	err := &run.Error{Output: "Starting deploy...\nError: UPGRADE FAILED: post-upgrade hooks failed: 1 error occurred:\n\t* job kratos-migrate failed: DeadlineExceeded\n\ndeploying \"kratos\": install: exit status 1\n"}
	want := ": UPGRADE FAILED: post-upgrade hooks failed: 1 error occurred: job kratos-migrate failed: DeadlineExceeded"
	if got := skaffoldReason(err); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := skaffoldReason(&run.Error{Output: "all fine"}); got != "" {
		t.Errorf("got %q", got)
	}
}
