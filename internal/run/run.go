// Package run is the one way this repository runs a command.
//
// A Runner executes on exec.CommandContext, so Ctrl-C and `mage -t` stop
// what it started. Output is streamed when Verbose is set (mage -v) and
// otherwise captured and returned inside the error only when the command
// fails, together with a command line the user can paste into a shell.
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Runner runs commands with a fixed environment and working directory.
type Runner struct {
	// Env is the complete environment of every command (nil: the caller's).
	Env []string
	// Dir is the working directory ("" : the caller's).
	Dir string
	// Verbose streams output to Stdout/Stderr instead of capturing it.
	Verbose bool
	// Stdout and Stderr receive streamed output (default os.Stderr for both:
	// stdout of this program is for data).
	Stdout, Stderr io.Writer
	// Record, when set, receives every command line before it runs.
	Record func(Cmd)
}

// Cmd is one command about to run.
type Cmd struct {
	Name string
	Args []string
	Env  []string // only the variables that differ from the caller's
	Dir  string
}

// String is a command line that can be pasted into a POSIX shell.
func (c Cmd) String() string {
	var parts []string
	if c.Dir != "" {
		parts = append(parts, "cd", Quote(c.Dir), "&&")
	}
	if len(c.Env) > 0 {
		parts = append(parts, "env")
		for _, e := range c.Env {
			parts = append(parts, Quote(e))
		}
	}
	parts = append(parts, Quote(c.Name))
	for _, a := range c.Args {
		parts = append(parts, Quote(a))
	}
	return strings.Join(parts, " ")
}

// Error is a failed command: its line, its exit, and what it printed.
type Error struct {
	Cmd    Cmd
	Err    error
	Output string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v\n  command: %s", e.Cmd.Name, e.Err, e.Cmd)
	if out := strings.TrimSpace(e.Output); out != "" {
		b.WriteString("\n  output:\n")
		for _, l := range Tail(out, 40) {
			b.WriteString("    " + l + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs the command; its output is returned only inside an error.
func (r *Runner) Run(ctx context.Context, name string, args ...string) error {
	_, err := r.run(ctx, nil, name, args...)
	return err
}

// Output runs the command and returns its stdout. Stderr is kept for the
// error only.
// RunIn is Run with dir as the working directory.
func (r *Runner) RunIn(ctx context.Context, dir, name string, args ...string) error {
	c := *r
	c.Dir = dir
	return c.Run(ctx, name, args...)
}

func (r *Runner) Output(ctx context.Context, name string, args ...string) (string, error) {
	var stdout bytes.Buffer
	_, err := r.run(ctx, &stdout, name, args...)
	return stdout.String(), err
}

// Stream runs the command with its stdout going to w as it comes (a
// follower such as `kubectl logs -f`); stderr is kept for the error only.
func (r *Runner) Stream(ctx context.Context, w io.Writer, name string, args ...string) error {
	_, err := r.run(ctx, w, name, args...)
	return err
}

func (r *Runner) run(ctx context.Context, stdout io.Writer, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, r.lookPath(name), args...)
	cmd.Env = r.Env
	cmd.Dir = r.Dir
	// Kill the whole process group on cancel: skaffold and helm start children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	// Mage gives targets 5 s after Ctrl-C; stop well within it.
	cmd.WaitDelay = 3 * time.Second

	c := Cmd{Name: name, Args: args, Env: envDiff(r.Env), Dir: r.Dir}
	if r.Record != nil {
		r.Record(c)
	}
	captured := &tailBuffer{max: captureMax}
	streamOut, streamErr := r.writers()
	switch {
	case stdout != nil && r.Verbose:
		cmd.Stdout, cmd.Stderr = stdout, io.MultiWriter(captured, streamErr)
	case stdout != nil:
		cmd.Stdout, cmd.Stderr = stdout, captured
	case r.Verbose:
		cmd.Stdout, cmd.Stderr = io.MultiWriter(captured, streamOut), io.MultiWriter(captured, streamErr)
	default:
		cmd.Stdout, cmd.Stderr = captured, captured
	}
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		out := captured.String()
		if b, ok := stdout.(*bytes.Buffer); ok && out == "" {
			out = b.String()
		}
		return cmd, &Error{Cmd: c, Err: err, Output: out}
	}
	return cmd, nil
}

// captureMax bounds what is kept of a command's output for its error: a
// long-running command (skaffold dev, kubectl logs -f) keeps only its
// latest output, and an error shows the last lines anyway.
const captureMax = 1 << 20

// tailBuffer keeps the last max bytes written to it (at most twice that
// between trims). exec writes to it from one goroutine per stream.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) > t.max {
		return string(t.b[len(t.b)-t.max:])
	}
	return string(t.b)
}

// lookPath finds a bare command name on the PATH of the runner's own
// environment (exec.Command would search the caller's PATH instead), so
// the pinned tools win over whatever else is installed.
func (r *Runner) lookPath(name string) string {
	if strings.Contains(name, "/") || r.Env == nil {
		return name
	}
	for i := len(r.Env) - 1; i >= 0; i-- {
		path, ok := strings.CutPrefix(r.Env[i], "PATH=")
		if !ok {
			continue
		}
		for _, dir := range filepath.SplitList(path) {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		break
	}
	return name
}

func (r *Runner) writers() (io.Writer, io.Writer) {
	o, e := r.Stdout, r.Stderr
	if o == nil {
		o = os.Stderr
	}
	if e == nil {
		e = os.Stderr
	}
	return o, e
}

// envDiff returns the variables of env that the caller's environment lacks
// or has with another value, sorted, so a printed command line shows what
// matters.
func envDiff(env []string) []string {
	if env == nil {
		return nil
	}
	have := map[string]bool{}
	for _, e := range os.Environ() {
		have[e] = true
	}
	var diff []string
	for _, e := range env {
		if !have[e] {
			diff = append(diff, e)
		}
	}
	sort.Strings(diff)
	return diff
}

// Quote quotes s for a POSIX shell when it needs quoting.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Tail is the last n lines of s, after a line saying how many came
// before them when there were more.
func Tail(s string, n int) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return lines
}

// IsExit reports whether err is a command that ran and exited non-zero.
func IsExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}
