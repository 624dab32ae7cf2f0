package engine

import (
	"testing"

	"github.com/alt-platform/orchestration/internal/run"
)

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
