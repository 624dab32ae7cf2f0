package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc identifies one started process: its PID and its start time (clock
// ticks after boot, from /proc/<pid>/stat), so a PID the kernel reused for
// another program is never taken for ours, and never signalled.
type proc struct {
	PID   int
	Start uint64
}

func (p proc) String() string { return fmt.Sprintf("%d %d\n", p.PID, p.Start) }

// parsePidFile reads what proc.String wrote.
func parsePidFile(b []byte) (proc, error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return proc{}, fmt.Errorf("pid file: want \"<pid> <start time>\", have %q", strings.TrimSpace(string(b)))
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return proc{}, fmt.Errorf("pid file: bad pid %q", f[0])
	}
	start, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return proc{}, fmt.Errorf("pid file: bad start time %q", f[1])
	}
	return proc{PID: pid, Start: start}, nil
}

func readPidFile(path string) (proc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return proc{}, err
	}
	return parsePidFile(b)
}

// parseStat returns the state and start time fields of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted after its last ')'.
func parseStat(stat string) (state byte, start uint64, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("stat: no command field")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, 0, errors.New("stat: too few fields")
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stat: start time: %w", err)
	}
	return f[0][0], start, nil
}

// statOf reads the state and start time of a live PID.
func statOf(pid int) (byte, uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStat(string(b))
}

// alive reports whether the process still runs: same PID, same start time,
// and not a zombie waiting to be reaped.
func (p proc) alive() bool {
	if p.PID <= 0 {
		return false
	}
	state, start, err := statOf(p.PID)
	return err == nil && start == p.Start && state != 'Z' && state != 'X'
}

// spawn starts a long-running process that outlives this one: its own
// session (so Ctrl-C on the terminal and the end of mage leave it alone),
// stdin from /dev/null, stdout and stderr appended to logPath.
//
// This is the one place the sim package starts a process without
// run.Runner: the Runner waits for its commands, a cluster component must
// keep running.
func spawn(bin string, args, env []string, dir, logPath string) (proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return proc{}, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n==== %s started by alt-platform sim: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return proc{}, err
	}
	// Reap it should it exit while this process still runs (tests, a long
	// mage run); once this process exits, init adopts it.
	go cmd.Wait()
	_, start, err := statOf(cmd.Process.Pid)
	if err != nil {
		cmd.Process.Kill()
		return proc{}, fmt.Errorf("read start time of %s (pid %d): %w", bin, cmd.Process.Pid, err)
	}
	return proc{PID: cmd.Process.Pid, Start: start}, nil
}

// stop sends SIGTERM to the process group of p (spawn made p its leader),
// waits up to grace, then sends SIGKILL and waits again. It reports whether
// SIGKILL was needed.
func stop(ctx context.Context, p proc, grace time.Duration) (killed bool, err error) {
	if !p.alive() {
		return false, nil
	}
	signal := func(sig syscall.Signal) {
		if err := syscall.Kill(-p.PID, sig); err != nil {
			syscall.Kill(p.PID, sig)
		}
	}
	signal(syscall.SIGTERM)
	if waitExit(ctx, p, grace) {
		return false, nil
	}
	signal(syscall.SIGKILL)
	if waitExit(ctx, p, 10*time.Second) {
		return true, nil
	}
	return true, fmt.Errorf("process %d still runs after SIGKILL", p.PID)
}

func waitExit(ctx context.Context, p proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for p.alive() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, outside the
// kernel's ephemeral range: a port in that range, once its component
// stops, can become the source port of any outgoing connection and block
// the component's restart. All listeners are held until every port is
// picked, so the ports differ from each other.
func freePorts(n int) ([]int, error) {
	lo, hi := serverPortRange(readFile("/proc/sys/net/ipv4/ip_local_port_range"))
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("no %d free ports on 127.0.0.1 between %d and %d", n, lo, hi)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lo+rand.IntN(hi-lo+1)))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// serverPortRange returns the ports to pick from, given the content of
// ip_local_port_range ("32768\t60999"): the larger gap of [10000, 65535]
// the ephemeral range leaves, or 20000-29999 when it cannot be read.
func serverPortRange(ephemeral string) (lo, hi int) {
	var elo, ehi int
	if _, err := fmt.Sscan(ephemeral, &elo, &ehi); err != nil || elo > ehi {
		return 20000, 29999
	}
	below, above := elo-10000, 65535-ehi
	switch {
	case below >= above && below >= 100:
		return 10000, elo - 1
	case above >= 100:
		return ehi + 1, 65535
	}
	return 20000, 29999 // the ephemeral range covers nearly all: take our chances
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// portFree reports whether nothing listens on 127.0.0.1:port.
func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
