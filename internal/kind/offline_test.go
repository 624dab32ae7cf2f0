package kind

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/alt-platform/orchestration/internal/kindimage"
)

// fakeImages is an ImageBuilder that counts its calls.
type fakeImages struct {
	calls int
	err   error
}

func (f *fakeImages) Ensure(context.Context) (kindimage.Images, error) {
	f.calls++
	return kindimage.Images{Node: "local.invalid/node:1", Registry: "local.invalid/registry:1"}, f.err
}

func TestOfflineImages(t *testing.T) {
	for _, tc := range []struct {
		name, offline string
		answers       bool
		wantOffline   bool
	}{
		{"auto, a registry answers: the public images", "auto", true, false},
		{"auto, no registry answers: the images built here", "", false, true},
		{"ALT_KIND_OFFLINE=1 even with a registry", "on", true, true},
		{"ALT_KIND_OFFLINE=0 even without a registry", "off", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, repo := newWorld(t), t.TempDir()
			imgs := &fakeImages{}
			p := w.provider(repo, func(o *Options) {
				o.Offline, o.Images = tc.offline, imgs
				o.RegistryAnswers = func(context.Context) bool { return tc.answers }
			})
			if _, err := p.Ensure(context.Background()); err != nil {
				t.Fatal(err)
			}
			node, reg, builds := NodeImage, RegistryImage, 0
			if tc.wantOffline {
				node, reg, builds = "local.invalid/node:1", "local.invalid/registry:1", 1
			}
			if imgs.calls != builds {
				t.Errorf("image builder called %d times, want %d", imgs.calls, builds)
			}
			if len(w.created) != 1 {
				t.Fatalf("created %d clusters", len(w.created))
			}
			c := w.created[0]
			if c.Nodes[0].Image != node || w.containers["alt-registry"].image != reg {
				t.Errorf("node image %s, registry image %s; want %s, %s", c.Nodes[0].Image, w.containers["alt-registry"].image, node, reg)
			}
			// Offline there is no kindnetd image: the node's bridge config serves.
			if c.Networking.DisableDefaultCNI != tc.wantOffline {
				t.Errorf("disableDefaultCNI %v, want %v", c.Networking.DisableDefaultCNI, tc.wantOffline)
			}
			// A second Ensure reuses the cluster: same images, no drift, no
			// second decision.
			if _, err := p.Ensure(context.Background()); err != nil {
				t.Errorf("second Ensure: %v", err)
			}
			if imgs.calls != builds || len(w.created) != 1 {
				t.Errorf("second Ensure: %d builds, %d creates", imgs.calls, len(w.created))
			}
		})
	}
}

func TestOfflineImageFailureStopsBeforeDocker(t *testing.T) {
	w, repo := newWorld(t), t.TempDir()
	p := w.provider(repo, func(o *Options) {
		o.Offline, o.Images = "on", &fakeImages{err: errors.New("debootstrap failed")}
	})
	if _, err := p.Ensure(context.Background()); err == nil || !strings.Contains(err.Error(), "debootstrap failed") {
		t.Fatalf("want the build's error, got %v", err)
	}
	if m := w.mutations(); len(m) > 0 {
		t.Errorf("changed something: %q", m)
	}
}

func TestDaemonWithoutEveryCapability(t *testing.T) {
	w, repo := newWorld(t), t.TempDir()
	var shim []string
	p := w.provider(repo, func(o *Options) {
		o.DaemonCaps = func() ([]string, []string, bool) {
			return []string{"CHOWN", "SYS_ADMIN"}, []string{"SYS_RESOURCE"}, true
		}
		o.InstallDockerShim = func(dir string, held, missing []string) error {
			shim = append(append([]string{dir}, held...), missing...)
			return nil
		}
	})
	if _, err := p.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(repo, ".cache", "kind", "bin"), "CHOWN", "SYS_ADMIN", "SYS_RESOURCE"}; !slices.Equal(shim, want) {
		t.Errorf("shim installed with %q, want %q", shim, want)
	}
	patches := w.created[0].ContainerdConfigPatches
	var c struct {
		Plugins map[string]struct {
			RestrictOOMScoreAdj bool `toml:"restrict_oom_score_adj"`
		} `toml:"plugins"`
	}
	// kind merges the patches into config.toml one by one.
	for _, p := range patches {
		if _, err := toml.Decode(p, &c); err != nil {
			t.Fatalf("patch %q: %v", p, err)
		}
	}
	if !c.Plugins["io.containerd.grpc.v1.cri"].RestrictOOMScoreAdj {
		t.Errorf("no restrict_oom_score_adj in the containerd patches %q", patches)
	}

	// A daemon that grants everything gets neither.
	w2 := newWorld(t)
	p2 := w2.provider(t.TempDir(), func(o *Options) {
		o.DaemonCaps = func() ([]string, []string, bool) { return capNames, nil, true }
		o.InstallDockerShim = func(string, []string, []string) error { t.Error("shim installed"); return nil }
	})
	if _, err := p2.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(w2.created[0].ContainerdConfigPatches); n != 1 {
		t.Errorf("%d containerd patches, want only the registry's", n)
	}
}

func TestParseCapBnd(t *testing.T) {
	// This project's machines: every capability but CAP_SYS_RESOURCE (24).
	held, missing, err := parseCapBnd("000001fffeffffff", 40)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(missing, []string{"SYS_RESOURCE"}) || len(held) != len(capNames)-1 {
		t.Errorf("held %d, missing %q", len(held), missing)
	}
	if _, missing, _ := parseCapBnd("000001ffffffffff", 40); len(missing) != 0 {
		t.Errorf("full set: missing %q", missing)
	}
	// A kernel without BPF and later: they are not missing, they do not exist.
	if held, missing, _ := parseCapBnd("000000fffeffffff", 37); !slices.Equal(missing, []string{"SYS_RESOURCE"}) || len(held) != 37 {
		t.Errorf("old kernel: held %d, missing %q", len(held), missing)
	}
	if _, _, err := parseCapBnd("zz", 40); err == nil {
		t.Error("want an error for a bad mask")
	}
}

// TestDockerShim runs the shim against a fake docker that prints its
// arguments one a line.
func TestDockerShim(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "real-docker")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(dir, "docker")
	if err := os.WriteFile(shim, []byte(dockerShim(fake, []string{"CHOWN", "SYS_ADMIN"}, []string{"SYS_RESOURCE"})), 0o755); err != nil {
		t.Fatal(err)
	}
	args := func(a ...string) []string {
		out, err := exec.Command(shim, a...).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	}
	got := args("run", "--name", "n 1", "--privileged", "--label", "it's", "img")
	want := append(append([]string{"run", "--name", "n 1"}, privilegedArgs([]string{"SYS_RESOURCE"})...), "--label", "it's", "img")
	if !slices.Equal(got, want) {
		t.Errorf("run:\n got %q\nwant %q", got, want)
	}
	if got := args("exec", "--privileged", "-i", "node", "cat", "x y"); !slices.Equal(got, []string{"exec", "-i", "node", "cat", "x y"}) {
		t.Errorf("exec: %q", got)
	}
	if got := args("ps", "--privileged"); !slices.Equal(got, []string{"ps", "--privileged"}) {
		t.Errorf("other commands must pass unchanged: %q", got)
	}
	if !slices.Contains(want, "a *:* rwm") || !slices.Contains(want, "/dev/kmsg") || !slices.Contains(want, "SYS_RESOURCE") {
		t.Errorf("privilegedArgs lack the device rules or the dropped capability: %q", want)
	}
}
