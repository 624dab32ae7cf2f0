package ui

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTickSaysTheStepIsAliveUntilStopped(t *testing.T) {
	var out lockedBuffer
	SetOutput(&out)
	t.Cleanup(func() { SetOutput(os.Stderr) })

	s := Start("build helm v3.22.0")
	stop := s.Tick(20 * time.Millisecond)
	time.Sleep(110 * time.Millisecond)
	stop()
	stop() // twice is harmless
	ticks := strings.Count(out.String(), "build helm v3.22.0: ")
	if ticks < 2 {
		t.Fatalf("want a progress line every 20ms for 110ms, got %d in:\n%s", ticks, out.String())
	}
	time.Sleep(60 * time.Millisecond)
	if after := strings.Count(out.String(), "so far"); after != ticks {
		t.Fatalf("progress went on after stop: %d lines, then %d", ticks, after)
	}
}
