package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/ui"
)

// Timeline draws the layers of a run on one time axis, one line each: when
// it started (from the run's start), a bar for how long it ran, its time.
// Layers that did not start have no bar.
func Timeline(results []Result, width int) []string {
	var end time.Duration
	name := 0
	for _, r := range results {
		end = max(end, r.Started+r.Duration)
		name = max(name, len(r.Layer))
	}
	if end <= 0 {
		return nil
	}
	col := func(d time.Duration) int { return int(int64(width) * int64(d) / int64(end)) }
	var lines []string
	for _, r := range results {
		bar := strings.Repeat(" ", width)
		if r.Action != NotStarted {
			from, to := col(r.Started), max(col(r.Started+r.Duration), col(r.Started)+1)
			bar = strings.Repeat(" ", from) + strings.Repeat("█", min(to, width)-from) + strings.Repeat(" ", max(width-to, 0))
		}
		lines = append(lines, fmt.Sprintf("%-*s |%s| %s", name, r.Layer, bar, timeOf(r)))
	}
	return append(lines, fmt.Sprintf("%-*s  0%s%s", name, "", strings.Repeat(" ", width-1), ui.Round(end)))
}

func timeOf(r Result) string {
	if r.Action == NotStarted {
		return "not started"
	}
	return fmt.Sprintf("%s at %s (%s)", ui.Round(r.Duration), ui.Round(r.Started), r.Action)
}

// Gantt is the same as a Mermaid Gantt chart (GitHub renders it): one task
// a layer from its start to its end, in milliseconds from the run's start;
// a failed layer is marked crit. "" when no layer started.
func Gantt(title string, results []Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gantt\n  title %s\n  dateFormat x\n  axisFormat %%M:%%S\n", title)
	tasks := 0
	for i, r := range results {
		if r.Action == NotStarted {
			continue
		}
		tasks++
		tag := ""
		if r.Action == Failed {
			tag = "crit, "
		}
		fmt.Fprintf(&b, "  %s (%s, %s) :%sl%d, %d, %d\n", r.Layer, r.Action, ui.Round(r.Duration), tag, i,
			r.Started.Milliseconds(), (r.Started + r.Duration).Milliseconds())
	}
	if tasks == 0 {
		return ""
	}
	return b.String()
}
