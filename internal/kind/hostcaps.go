package kind

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/alt-platform/orchestration/internal/ui"
)

// capNames are Linux capabilities by number, as Docker's --cap-add names
// them.
var capNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// parseCapBnd splits a CapBnd mask (/proc/<pid>/status, hex) into the
// capabilities it holds and those it lacks, of the ones named above up to
// the kernel's last (/proc/sys/kernel/cap_last_cap).
func parseCapBnd(hex string, last int) (held, missing []string, err error) {
	mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("capability mask %q: %w", hex, err)
	}
	for i, n := range capNames {
		switch {
		case i > last:
		case mask&(1<<i) != 0:
			held = append(held, n)
		default:
			missing = append(missing, n)
		}
	}
	return held, missing, nil
}

// DaemonCaps reads the capability bounding set of the local dockerd
// process. ok is false when no dockerd process is visible (a daemon in
// another namespace, a remote or rootless one): then nothing is assumed.
func DaemonCaps() (held, missing []string, ok bool) {
	last := len(capNames) - 1
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "dockerd" {
			continue
		}
		status, err := os.ReadFile(filepath.Join(d, "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if v, found := strings.CutPrefix(l, "CapBnd:"); found {
				held, missing, err := parseCapBnd(v, last)
				return held, missing, err == nil
			}
		}
	}
	return nil, nil, false
}

// privilegedArgs replace --privileged for a daemon that lacks the missing
// capabilities: every capability Docker knows but those (Docker 20.10
// knows none past AUDIT_READ, so they cannot be named one by one), no
// confinement, every device allowed, and the kernel log the kubelet reads.
func privilegedArgs(missing []string) []string {
	a := []string{"--cap-add", "ALL"}
	for _, c := range missing {
		a = append(a, "--cap-drop", c)
	}
	return append(a,
		"--security-opt", "systempaths=unconfined",
		"--security-opt", "apparmor=unconfined",
		"--security-opt", "seccomp=unconfined",
		"--device-cgroup-rule", "a *:* rwm",
		"--device", "/dev/kmsg")
}

// dockerShim is a `docker` program for kind: Docker 20.10's --privileged
// asks runc for every capability, which fails ("unable to apply caps:
// operation not permitted") when the daemon's bounding set lacks one. The
// shim passes every command through to the real docker but replaces
// --privileged in `run` and `create` with privilegedArgs and drops it from
// `exec`. The node image's entrypoint then makes the cgroup v1
// hierarchies, which Docker mounts read-only without --privileged,
// writable (internal/kindimage).
func dockerShim(realDocker string, held, missing []string) string {
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	var repl []string
	for _, a := range privilegedArgs(missing) {
		repl = append(repl, quote(a))
	}
	return `#!/bin/sh
# Written by internal/kind (alt-platform): this Docker daemon's capability
# bounding set lacks ` + strings.Join(missing, ", ") + `, so Docker's --privileged
# (every capability) fails. kind's --privileged becomes the capabilities the
# daemon holds, unconfined; every other command passes through unchanged.
real=` + quote(realDocker) + `
case "${1:-}" in
run|create|exec) ;;
*) exec "$real" "$@" ;;
esac
cmd=$1
first=1
for a in "$@"; do
	if [ "$first" = 1 ]; then set --; first=0; fi
	if [ "$a" = --privileged ]; then
		if [ "$cmd" != exec ]; then set -- "$@" ` + strings.Join(repl, " ") + `; fi
	else
		set -- "$@" "$a"
	fi
done
exec "$real" "$@"
`
}

var shimOnce sync.Mutex

// installDockerShim writes the shim into dir and puts dir first on this
// process's PATH, where the kind library looks docker up (it offers no
// other hook). Every other docker command passes through the shim
// unchanged. Idempotent.
func installDockerShim(dir string, held, missing []string) error {
	shimOnce.Lock()
	defer shimOnce.Unlock()
	path := os.Getenv("PATH")
	if slices.Contains(filepath.SplitList(path), dir) {
		return nil
	}
	realDocker, err := lookPathOutside("docker", dir, path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(dockerShim(realDocker, held, missing)), 0o755); err != nil {
		return err
	}
	ui.Warn("kind: this Docker daemon cannot grant %s, so --privileged fails: kind's nodes run with the capabilities it holds instead (docker shim %s)",
		strings.Join(missing, ", "), filepath.Join(dir, "docker"))
	return os.Setenv("PATH", dir+string(os.PathListSeparator)+path)
}

func lookPathOutside(name, skip, path string) (string, error) {
	for _, d := range filepath.SplitList(path) {
		if d == skip || d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("docker: the Docker CLI is not on PATH")
}
