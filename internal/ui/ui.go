// Package ui prints progress lines and summary tables on stderr.
//
// Lines look like kind's: " • step", " ✓ step (1.2s)", " ✗ step". Colour is
// used only on a terminal and never when NO_COLOR is set (fatih/color decides
// both). Data goes to stdout; everything this package prints goes to stderr.
package ui

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/fatih/color"
)

var (
	mu  sync.Mutex
	out io.Writer = os.Stderr

	green  = color.New(color.FgGreen).SprintFunc()
	red    = color.New(color.FgRed).SprintFunc()
	yellow = color.New(color.FgYellow).SprintFunc()
	bold   = color.New(color.Bold).SprintFunc()
)

// SetOutput redirects every line this package prints (tests use it).
func SetOutput(w io.Writer) {
	mu.Lock()
	defer mu.Unlock()
	out = w
}

// Writer passes another program's output (skaffold dev's) to where this
// package prints, between its lines.
func Writer() io.Writer { return writer{} }

type writer struct{}

func (writer) Write(p []byte) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	return out.Write(p)
}

func printf(format string, a ...any) {
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(out, format, a...)
}

// Step is one unit of progress, printed when it starts and when it ends.
type Step struct {
	name  string
	start time.Time
}

// Start prints " • name" and returns the step to finish.
func Start(format string, a ...any) *Step {
	s := &Step{name: fmt.Sprintf(format, a...), start: time.Now()}
	printf(" • %s\n", s.name)
	return s
}

// Elapsed is the time since the step started.
func (s *Step) Elapsed() time.Duration { return time.Since(s.start) }

// Tick prints "   name: 1m10s so far" every interval until stop is called,
// so that a step of minutes (a tool build, an image build) shows it is
// alive. Steps are quiet for their first interval.
func (s *Step) Tick(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				printf("   %s: %s so far\n", s.name, s.Elapsed().Round(time.Second))
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}

// Done prints " ✓ name (1.2s)".
func (s *Step) Done() { printf(" %s %s (%s)\n", green("✓"), s.name, Round(s.Elapsed())) }

// Skip prints " ✓ name: why" for a step that had nothing to do.
func (s *Step) Skip(why string) { printf(" %s %s: %s\n", green("✓"), s.name, why) }

// End prints Done when err is nil and Fail otherwise, and returns err.
func (s *Step) End(err error) error {
	if err != nil {
		s.Fail()
	} else {
		s.Done()
	}
	return err
}

// Fail prints " ✗ name (1.2s)".
func (s *Step) Fail() { printf(" %s %s (%s)\n", red("✗"), s.name, Round(s.Elapsed())) }

// Warn prints a highlighted line that must not be missed (fallbacks, things
// switched off).
func Warn(format string, a ...any) { printf(" %s %s\n", yellow("!"), fmt.Sprintf(format, a...)) }

// Info prints an indented plain line.
func Info(format string, a ...any) { printf("   %s\n", fmt.Sprintf(format, a...)) }

// Failure prints a red heading and an indented explanation: the one screen
// that says what failed and why.
func Failure(heading, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, " %s %s\n", red("✗"), bold(heading))
	for _, l := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		fmt.Fprintf(&b, "   %s\n", l)
	}
	printf("%s", b.String())
}

// Banner prints a bold block, one line per entry, framed so it stands out.
func Banner(lines ...string) {
	width := 0
	for _, l := range lines {
		width = max(width, len([]rune(l)))
	}
	rule := strings.Repeat("=", width+4)
	var b strings.Builder
	fmt.Fprintln(&b, yellow(rule))
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s\n", yellow("="), bold(l))
	}
	fmt.Fprintln(&b, yellow(rule))
	printf("%s", b.String())
}

// Table prints rows under a header, columns aligned.
func Table(header []string, rows [][]string) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "   "+strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, "   "+strings.Join(r, "\t"))
	}
	w.Flush()
	printf("%s", b.String())
}

// Round shortens a duration for display: 1.2s, 340ms, 2m3s.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
