package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunErrorCarriesCommandAndOutput(t *testing.T) {
	r := &Runner{}
	err := r.Run(context.Background(), "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3")
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"command: sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'", "to-stdout", "to-stderr", "exit status 3"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if !IsExit(err) {
		t.Error("IsExit = false")
	}
}

func TestOutputKeepsStderrOut(t *testing.T) {
	out, err := (&Runner{}).Output(context.Background(), "sh", "-c", "echo data; echo noise >&2")
	if err != nil || out != "data\n" {
		t.Fatalf("out=%q err=%v", out, err)
	}
}

func TestVerboseStreams(t *testing.T) {
	var buf strings.Builder
	r := &Runner{Verbose: true, Stdout: &buf, Stderr: &buf}
	if err := r.Run(context.Background(), "echo", "hello"); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "hello\n" {
		t.Errorf("streamed %q", buf.String())
	}
}

func TestCancelStopsTheProcessGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := (&Runner{}).Run(ctx, "sh", "-c", "sleep 30 & sleep 30; wait")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to stop", d)
	}
}

func TestLookPathUsesTheRunnersPATH(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "pinned-tool")
	os.WriteFile(tool, []byte("#!/bin/sh\necho pinned\n"), 0o755)
	r := &Runner{Env: []string{"PATH=" + dir + ":/usr/bin:/bin"}}
	out, err := r.Output(context.Background(), "pinned-tool")
	if err != nil || out != "pinned\n" {
		t.Fatalf("out=%q err=%v", out, err)
	}
}

func TestCmdString(t *testing.T) {
	c := Cmd{Name: "helm", Args: []string{"upgrade", "a b", "it's"}, Env: []string{"KUBECONFIG=/k"}, Dir: "/r"}
	want := `cd /r && env KUBECONFIG=/k helm upgrade 'a b' 'it'\''s'`
	if c.String() != want {
		t.Errorf("got  %s\nwant %s", c, want)
	}
}

// A command that prints a lot keeps only its latest output for the error:
// memory stays bounded over a long-running command, the last lines stay.
func TestCapturedOutputIsBounded(t *testing.T) {
	tb := &tailBuffer{max: 10}
	for i := range 100 {
		fmt.Fprintf(tb, "line %d\n", i)
		if len(tb.b) > 2*tb.max+len("line 99\n") {
			t.Fatalf("holds %d bytes after line %d", len(tb.b), i)
		}
	}
	if got := tb.String(); got != "8\nline 99\n" {
		t.Errorf("kept %q, want the last 10 bytes", got)
	}
	r := &Runner{}
	err := r.Run(t.Context(), "sh", "-c", `yes filler | head -c 3000000; echo last words; exit 3`)
	var re *Error
	if !errors.As(err, &re) || len(re.Output) > captureMax || !strings.HasSuffix(strings.TrimSpace(re.Output), "last words") {
		t.Fatalf("error output of %d bytes, ends %q", len(re.Output), Tail(re.Output, 1))
	}
}
