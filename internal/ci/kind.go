package ci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/contract"
	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/kind"
	"github.com/alt-platform/orchestration/internal/report"
	"github.com/alt-platform/orchestration/internal/standin"
)

// KindName is the kind cluster of ci's kind stage unless ALT_KIND_NAME
// names another; it is deleted at the end, pass or fail.
const KindName = "alt-ci"

// RunKind runs the kind stage alone (kind:ci), with its report.
func RunKind(ctx context.Context, o Options) error {
	g, err := newGate(o)
	if err != nil {
		return err
	}
	g.stage("kind")
	g.kindStage(ctx)
	return g.finish(nil, nil)
}

// kindStage runs the whole kind path for real on a copy of the platform,
// with stand-in sources (no Alt code runs): kind:create, dev (every layer
// Ready on a real kubelet), a request through localhost to nginx-external
// for each route, dev again (every layer unchanged), the day-to-day
// targets (watch rebuilding and redeploying a source change, logs, open;
// day.go), a stand-in told to
// crash (dev fails naming the pod, its last state and the probe failure),
// kind:reset, and kind:delete at the end whatever happened. Where no
// Docker daemon answers it is skipped, and says why.
func (g *gate) kindStage(ctx context.Context) {
	if !config.DockerAnswers() {
		g.cases = append(g.cases, report.Case{Suite: "kind", Name: "kind stage",
			Skipped: "no Docker daemon answers (DOCKER_HOST or /var/run/docker.sock): kind needs one"})
		return
	}
	dir := filepath.Join(g.o.Repo, Dir, "kind-platform")
	tree := filepath.Join(g.o.Repo, Dir, "standins", "alt")
	name := os.Getenv("ALT_KIND_NAME")
	if name == "" {
		name = KindName
	}
	// nginx-external's host port (ALT_KIND_HTTP_PORT, read by the targets
	// from the same environment).
	entry := "http://127.0.0.1:80/"
	if p := os.Getenv("ALT_KIND_HTTP_PORT"); p != "" {
		entry = "http://127.0.0.1:" + p + "/"
	}
	env := append(os.Environ(), "ALT_CLUSTER=kind", "ALT_PROFILE=dev", "ALT_SRC="+tree,
		"ALT_KIND_NAME="+name, "ALT_KIND_RECREATE=1")
	target := func(timeout time.Duration, extra []string, args ...string) (string, error) {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(tctx, g.o.Self, args...)
		cmd.Dir = dir
		cmd.Env = append(env, extra...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("%s %s: %w\n%s", filepath.Base(g.o.Self), strings.Join(args, " "), err, tail(string(out), 80))
		}
		return string(out), nil
	}
	if err := g.add("kind", "stand-in sources ("+standin.Banner+") and a copy of the platform", func() error {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := engine.CopyPlatform(g.o.Repo, dir); err != nil {
			return err
		}
		_, err := standin.Generate(ctx, g.o.Runner, g.o.Repo, tree, standin.TreeOptions{})
		return err
	}); err != nil {
		return
	}
	defer g.add("kind", "kind:delete (the cluster "+name+" and its registry, pass or fail)", func() error {
		_, err := target(5*time.Minute, nil, "kind:delete")
		return err
	})
	if err := g.add("kind", "kind images: the pinned public ones, or those built here once per machine when no registry answers (kind:image)", func() error {
		cfg, err := config.FromEnvironment()
		if err != nil {
			return err
		}
		return kind.FromConfig(g.o.Repo, cfg, g.o.Runner, nil).EnsureImages(ctx)
	}); err != nil {
		return
	}
	if err := g.add("kind", "kind:create (cluster "+name+")", func() error {
		_, err := target(60*time.Minute, nil, "kind:create")
		return err
	}); err != nil {
		return
	}
	for _, pass := range []struct {
		name string
		want engine.Action
	}{{"dev with stand-ins: every layer Ready on a real kubelet", engine.Deployed}, {"dev again: every layer unchanged", engine.Unchanged}} {
		if _, err := g.layerPass("kind", dir, pass.name, every(pass.want), func() error {
			_, err := target(60*time.Minute, nil, "dev")
			return err
		}); err != nil {
			return
		}
		if pass.want == engine.Deployed {
			g.add("kind", "routes: a request through localhost to nginx-external reaches the right service", func() error {
				return checkRoutes(ctx, g.o.Repo, entry)
			})
		}
	}
	// The edit-and-dev loop: a source change rebuilds its image and rolls
	// out only its layer. (Its tag may be the same <commit>-dirty as
	// before; the digest the push gave pins the new image.)
	version := fmt.Sprintf("ci-dev-%d", time.Now().Unix())
	if _, err := g.layerPass("kind", dir, "dev after a saved change of alt-backend's stand-in source: only 04 is redeployed", func(layer string) engine.Action {
		if layer == "alt-core-services" {
			return engine.Deployed
		}
		return engine.Unchanged
	}, func() error {
		c, err := contract.Load(g.o.Repo)
		if err != nil {
			return err
		}
		if err := setStandinVersion(tree, c.Service("alt-backend").Context, version); err != nil {
			return err
		}
		_, err = target(30*time.Minute, nil, "dev")
		return err
	}); err == nil {
		g.add("kind", "the new alt-backend answers through nginx-external with the changed source", func() error {
			_, err := awaitVersion(ctx, entry+"api/backend/ci-dev", "alt-backend", version, time.Minute)
			return err
		})
	}
	g.day(ctx, dir, tree, env, entry)
	g.add("kind", "a stand-in told to crash fails dev with a diagnosis (pod, last state, probe failure)", func() error {
		if _, err := standin.Generate(ctx, g.o.Runner, g.o.Repo, tree, standin.TreeOptions{Crash: []string{"alt-backend"}}); err != nil {
			return err
		}
		defer standin.Generate(context.WithoutCancel(ctx), g.o.Runner, g.o.Repo, tree, standin.TreeOptions{})
		out, err := target(15*time.Minute, []string{"ALT_LAYER_TIMEOUT=2m"}, "dev")
		if err == nil {
			return errors.New("dev passed with alt-backend's stand-in told to crash")
		}
		return diagnosed(out)
	})
	g.add("kind", "kind:reset", func() error {
		_, err := target(30*time.Minute, nil, "kind:reset")
		return err
	})
}

// diagnosed checks that a failed run's output names the crashing pod, its
// container's last state and the failing probe.
func diagnosed(out string) error {
	var missing []string
	for what, want := range map[string]string{
		"the pod":                    "pod alt-backend-",
		"its container's last state": "last state: terminated",
		"the exit status":            "exit 3",
		"the probe failure event":    "probe failed",
	} {
		if !strings.Contains(out, want) {
			missing = append(missing, fmt.Sprintf("%s (%q)", what, want))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("dev failed, but its diagnosis does not name %s:\n%s", strings.Join(missing, ", "), tail(out, 60))
	}
	return nil
}

// checkRoutes sends, for each route of the contract, a request through
// localhost to nginx-external and reads the stand-in's echo: the service
// that answered and the path it saw.
func checkRoutes(ctx context.Context, repo, entry string) error {
	c, err := contract.Load(repo)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(entry, "/")+path, nil)
		if err != nil {
			return 0, nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, b, err
	}
	// A Service's ready endpoints reach the node's kube-proxy rules a moment
	// after its pods are Ready, so the check may see nginx answer 502 (its
	// upstream refused) or a refused connection for a few seconds after dev:
	// those are asked again for up to 30 s; any other answer is final.
	get = retryGateway(get, 30*time.Second)
	var errs []error
	if code, body, err := get(c.EntryHealth.Path); err != nil || code != 200 {
		errs = append(errs, fmt.Errorf("%s: HTTP %d %v %s", c.EntryHealth.Path, code, err, body))
	}
	for _, r := range c.Routes {
		probe := "ci-route-probe/x"
		code, body, err := get(r.Path + probe)
		if err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r.Path, err))
			continue
		}
		var e standin.Echo
		if err := json.Unmarshal(body, &e); err != nil {
			errs = append(errs, fmt.Errorf("route %s: HTTP %d, not a stand-in's echo: %s", r.Path, code, tail(string(body), 5)))
			continue
		}
		want := r.Release
		if e.Standin != want || e.Path != r.To+probe || e.Port != r.Port {
			errs = append(errs, fmt.Errorf("route %s: answered by %s on port %d with path %s; want %s on port %d with path %s",
				r.Path, e.Standin, e.Port, e.Path, want, r.Port, r.To+probe))
		}
	}
	return errors.Join(errs...)
}

// retryGateway asks again, once a second until patience runs out, while the
// answer is a connection error or a gateway status (502, 503, 504).
func retryGateway(get func(string) (int, []byte, error), patience time.Duration) func(string) (int, []byte, error) {
	return func(path string) (int, []byte, error) {
		deadline := time.Now().Add(patience)
		for {
			code, body, err := get(path)
			gateway := err != nil || code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
			if !gateway || time.Now().After(deadline) {
				return code, body, err
			}
			time.Sleep(time.Second)
		}
	}
}
