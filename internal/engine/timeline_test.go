package engine

import (
	"strings"
	"testing"
	"time"
)

var timelineRun = []Result{
	{Layer: "alt-foundation", Action: Deployed, Started: 0, Duration: 10 * time.Second},
	{Layer: "alt-infrastructure", Action: Failed, Started: 10 * time.Second, Duration: 30 * time.Second},
	{Layer: "alt-operations", Action: NotStarted},
}

func TestTimeline(t *testing.T) {
	got := strings.Join(Timeline(timelineRun, 8), "\n")
	want := strings.Join([]string{
		"alt-foundation     |██      | 10s at 0s (deployed)",
		"alt-infrastructure |  ██████| 30s at 10s (failed)",
		"alt-operations     |        | not started",
		"                    0       40s",
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if Timeline([]Result{{Layer: "a", Action: NotStarted}}, 8) != nil {
		t.Error("a run where nothing ran has a timeline")
	}
}

func TestGantt(t *testing.T) {
	want := "gantt\n  title cold all\n  dateFormat x\n  axisFormat %M:%S\n" +
		"  alt-foundation (deployed, 10s) :l0, 0, 10000\n" +
		"  alt-infrastructure (failed, 30s) :crit, l1, 10000, 40000\n"
	if got := Gantt("cold all", timelineRun); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if g := Gantt("t", timelineRun[2:]); g != "" {
		t.Errorf("a run where nothing ran has a Gantt chart: %q", g)
	}
}
