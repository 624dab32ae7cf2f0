package ci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alt-platform/orchestration/internal/contract"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/standin"
)

// The day-to-day part of the kind stage, after dev: watch, logs, open and
// status on the running platform, each through the targets a developer
// runs.

// proc is a target running in the background (watch, logs, open): its
// output is kept and can be waited on.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	more chan struct{} // signalled on every write
	done chan error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	n, err := p.out.Write(b)
	p.mu.Unlock()
	select {
	case p.more <- struct{}{}:
	default:
	}
	return n, err
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// await waits until the output matches re and returns the match (its
// groups), or fails when the target ends or the time is up.
func (p *proc) await(re *regexp.Regexp, within time.Duration) ([]string, error) {
	deadline := time.After(within)
	for {
		if m := re.FindStringSubmatch(p.output()); m != nil {
			return m, nil
		}
		select {
		case <-p.more:
		case err := <-p.done:
			p.done <- err
			return nil, fmt.Errorf("%s ended (%v) before printing %q:\n%s", strings.Join(p.cmd.Args[1:], " "), err, re, tail(p.output(), 40))
		case <-deadline:
			return nil, fmt.Errorf("%s did not print %q within %s:\n%s", strings.Join(p.cmd.Args[1:], " "), re, within, tail(p.output(), 40))
		}
	}
}

// interrupt is Ctrl-C: SIGINT, then the exit within 20 s (mage gives a
// target 5 s, the tools it runs are stopped in 3).
func (p *proc) interrupt() error {
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			return fmt.Errorf("%s after Ctrl-C: %w:\n%s", strings.Join(p.cmd.Args[1:], " "), err, tail(p.output(), 40))
		}
		return nil
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within 20 s of Ctrl-C:\n%s", strings.Join(p.cmd.Args[1:], " "), tail(p.output(), 40))
	}
}

// day checks, on the platform dev just deployed with stand-ins: watch
// alt-backend rebuilds and redeploys a change of its stand-in source (the
// new pod answers with it, through watch's port-forward and through
// nginx-external), Ctrl-C leaves the platform as it was with 04 marked for
// the next dev, logs shows the new pod's output, open prints URLs that
// answer. Each is one case with its time.
func (g *gate) day(ctx context.Context, dir, tree string, env []string, entry string) {
	c, err := contract.Load(g.o.Repo)
	if err != nil {
		g.add("kind", "day to day", func() error { return err })
		return
	}
	start := func(args ...string) (*proc, error) {
		p := &proc{more: make(chan struct{}, 1), done: make(chan error, 1)}
		p.cmd = exec.CommandContext(ctx, g.o.Self, args...)
		p.cmd.Dir, p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = dir, env, p, p
		if err := p.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { p.done <- p.cmd.Wait() }()
		return p, nil
	}
	statusJSON := func() (*engine.PlatformStatus, error) {
		cmd := exec.CommandContext(ctx, g.o.Self, "status", "-json")
		cmd.Dir, cmd.Env = dir, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var st engine.PlatformStatus
		if jerr := json.Unmarshal(out, &st); jerr != nil {
			return nil, fmt.Errorf("status -json: %v (%v):\n%s", jerr, err, tail(stderr.String(), 30))
		}
		return &st, nil
	}
	revisions := func(st *engine.PlatformStatus) map[string]int {
		revs := map[string]int{}
		for _, l := range st.Layers {
			for _, r := range l.Releases {
				revs[r.Name] = r.Revision
			}
		}
		return revs
	}

	var before *engine.PlatformStatus
	var watch *proc
	var forward string
	ready := g.add("kind", "watch alt-backend: skaffold dev of its image and release alone is ready, its port-forward answers", func() error {
		var err error
		if before, err = statusJSON(); err != nil {
			return err
		}
		if watch, err = start("watch", "alt-backend"); err != nil {
			return err
		}
		m, err := watch.await(regexp.MustCompile(`Port forwarding service/alt-backend in namespace alt-apps, remote port 9000 -> (http://127\.0\.0\.1:\d+)`), 5*time.Minute)
		if err != nil {
			return err
		}
		forward = m[1]
		if _, err := watch.await(regexp.MustCompile(`watching alt-backend \(alt-core-services\)`), 5*time.Minute); err != nil {
			return err
		}
		_, cfg, err := standinConfig(tree, c.Service("alt-backend").Context)
		if err != nil {
			return err
		}
		_, err = awaitVersion(ctx, forward+"/ci-watch", "alt-backend", cfg.Version, 30*time.Second)
		return err
	})
	// What logs must show: the rebuilt stand-in's start, or any start when
	// watch did not get that far.
	logLine := regexp.MustCompile(`alt-backend: listening on`)
	if ready != nil {
		if watch != nil {
			watch.interrupt()
		}
	} else {
		version := fmt.Sprintf("ci-watch-%d", time.Now().Unix())
		if g.add("kind", "watch alt-backend: a saved change of its stand-in source is rebuilt, pushed and redeployed (the new pod answers with it)", func() error {
			if err := setStandinVersion(tree, c.Service("alt-backend").Context, version); err != nil {
				return err
			}
			if _, err := awaitVersion(ctx, forward+"/ci-watch", "alt-backend", version, 4*time.Minute); err != nil {
				return fmt.Errorf("%w\nwatch printed:\n%s", err, tail(watch.output(), 40))
			}
			// The new pod answers before the rollout is over (the old pod
			// still stopping): skaffold watches again once its status
			// check has seen the rollout through.
			if _, err := watch.await(regexp.MustCompile(`(?s)Watching for changes.*Watching for changes`), 2*time.Minute); err != nil {
				return err
			}
			// The platform's own path serves it too: nginx-external → alt-backend.
			_, err := awaitVersion(ctx, entry+"api/backend/ci-watch", "alt-backend", version, 30*time.Second)
			return err
		}) == nil {
			logLine = regexp.MustCompile(`alt-backend: version ` + regexp.QuoteMeta(version))
		}
		g.add("kind", "watch stops on Ctrl-C: the platform left as it was, 04 marked for the next dev, the other releases untouched", func() error {
			if err := watch.interrupt(); err != nil {
				return err
			}
			after, err := statusJSON()
			if err != nil {
				return err
			}
			var errs []error
			if !after.Healthy {
				errs = append(errs, fmt.Errorf("unhealthy after watch: %s", strings.Join(after.Problems, "; ")))
			}
			old, now := revisions(before), revisions(after)
			for name, rev := range old {
				if name == "alt-backend" {
					if now[name] <= rev {
						errs = append(errs, fmt.Errorf("alt-backend: revision %d after watch, %d before: not redeployed?", now[name], rev))
					}
				} else if now[name] != rev {
					errs = append(errs, fmt.Errorf("%s: revision %d after watch, %d before: watch touched it", name, now[name], rev))
				}
			}
			for _, l := range after.Layers {
				stale := strings.HasPrefix(l.Inputs, "changed: watch rebuilt and redeployed alt-backend")
				if (l.Layer == "alt-core-services") != stale {
					errs = append(errs, fmt.Errorf("%s: inputs %q", l.Layer, l.Inputs))
				}
			}
			return errors.Join(errs...)
		})
	}
	g.add("kind", "logs alt-backend: shows the output of its pod (the rebuilt stand-in's start)", func() error {
		p, err := start("logs", "alt-backend", "-since=10m")
		if err != nil {
			return err
		}
		_, werr := p.await(logLine, time.Minute)
		return errors.Join(werr, p.interrupt())
	})
	g.add("kind", "open: prints the platform's and Grafana's URLs, and both answer", func() error {
		p, err := start("open")
		if err != nil {
			return err
		}
		var errs []error
		for _, what := range []string{"platform", "grafana"} {
			m, err := p.await(regexp.MustCompile(what+`: (http://\S+)`), time.Minute)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if _, err := awaitVersion(ctx, m[1], "", "", 30*time.Second); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", what, m[1], err))
			}
		}
		return errors.Join(append(errs, p.interrupt())...)
	})
}

// standinConfig reads the configuration a stand-in's build context gives
// its image (standin/config.json there).
func standinConfig(tree, context string) (string, *standin.Config, error) {
	path := filepath.Join(tree, context, "standin", "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return path, nil, err
	}
	var cfg standin.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return path, nil, fmt.Errorf("%s: %w", path, err)
	}
	return path, &cfg, nil
}

// setStandinVersion edits the version a stand-in's build context gives
// its image: a source change.
func setStandinVersion(tree, context, version string) error {
	path, cfg, err := standinConfig(tree, context)
	if err != nil {
		return err
	}
	cfg.Version = version
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// awaitVersion asks url until it answers 200 with a stand-in's echo from
// who ("" : any answer) saying version ("" : none needed); connection
// errors, gateway answers and older versions are asked again until within
// is up.
func awaitVersion(ctx context.Context, url, who, version string, within time.Duration) (*standin.Echo, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(within)
	last := ""
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			var e standin.Echo
			jerr := json.Unmarshal(b, &e)
			switch {
			case resp.StatusCode == http.StatusOK && who == "":
				return &e, nil
			case resp.StatusCode == http.StatusOK && jerr == nil && e.Standin == who && e.Version == version:
				return &e, nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, tail(string(b), 3))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			want := "an answer"
			if who != "" {
				want = fmt.Sprintf("%s answering with version %q", who, version)
			}
			return nil, fmt.Errorf("%s: no %s within %s; last: %s", url, want, within, last)
		}
		time.Sleep(time.Second)
	}
}
