package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alt-platform/orchestration/internal/kind"
	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/standin"
	"github.com/alt-platform/orchestration/internal/ui"
)

// nodeImageLoader is a cluster whose nodes' containerd images can be put
// into directly (kind).
type nodeImageLoader interface {
	LoadImages(ctx context.Context, imgs []kind.LoadImage) (bool, error)
}

var _ nodeImageLoader = (*kind.Provider)(nil)

// standinThirdParty builds the third-party stand-in images and puts them
// into the kind node under the charts' exact references, when ALT_SRC is a
// stand-in tree: no third-party server can be pulled where no registry
// answers. With Alt's real sources nothing happens here.
func (e *Engine) standinThirdParty(ctx context.Context) error {
	loader, ok := e.Cluster.(nodeImageLoader)
	if !ok {
		return nil
	}
	if is, _ := standin.IsTree(e.Cfg.Src); !is {
		return nil
	}
	step := ui.Start("third-party stand-ins (%s) into the kind node", thirdPartyNames())
	err := func() error {
		paths, err := e.Tools.Ensure(ctx, "kubectl")
		if err != nil {
			return err
		}
		bin := standin.TreeProgram(e.Cfg.Src)
		b := &standin.ImageBuilder{Repo: e.Repo, Runner: e.Runner, Kubectl: paths["kubectl"], Program: bin}
		imgs, err := b.Ensure(ctx)
		if err != nil {
			return err
		}
		var load []kind.LoadImage
		for _, im := range imgs {
			li := kind.LoadImage{Tag: im.Tag}
			for _, ref := range im.Refs {
				li.Names = append(li.Names, standin.NodeNames(ref)...)
			}
			load = append(load, li)
		}
		loaded, err := loader.LoadImages(ctx, load)
		if err != nil {
			return err
		}
		if err := e.standinRequests(ctx); err != nil {
			return err
		}
		if !loaded {
			step.Skip("already in the node")
			step = nil
		}
		return nil
	}()
	if step == nil {
		return nil
	}
	return step.End(err)
}

func thirdPartyNames() string {
	var n []string
	for _, tp := range standin.ThirdParties {
		n = append(n, tp.Name)
	}
	return strings.Join(n, ", ")
}

// buildkitEnv is what `docker build` needs for BuildKit here, as variables
// that replace the runner's. Docker's CLI from 23.0 on refuses
// DOCKER_BUILDKIT=1 without the buildx plugin. In order:
//   - the CLI has buildx: nothing to add;
//   - a CLI older than 23.0 (BuildKit built in) is also on PATH, e.g.
//     Debian's docker.io next to a newer CLI: it goes first on Skaffold's
//     PATH, alone in a folder of the tools cache;
//   - else the pinned docker-buildx (tools cache, built once) goes into a
//     private DOCKER_CONFIG (the user's ~/.docker is not touched; its
//     config.json is copied in).
func (e *Engine) buildkitEnv(ctx context.Context) ([]string, error) {
	if e.Runner.Run(ctx, "docker", "buildx", "version") == nil {
		return nil, nil
	}
	path := envValue(orEnviron(e.Runner.Env), "PATH")
	if cli, version := builtinBuildkitCLI(ctx, e.Runner, path); cli != "" {
		dir := filepath.Join(e.Cfg.ToolsDir, "docker-cli")
		if err := linkInto(dir, "docker", cli); err != nil {
			return nil, err
		}
		ui.Info("BuildKit through Docker's CLI %s at %s, BuildKit built in (the first docker on PATH has no buildx plugin)", version, cli)
		return []string{"PATH=" + dir + string(os.PathListSeparator) + path}, nil
	}
	paths, err := e.Tools.Ensure(ctx, "docker-buildx")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.Cfg.ToolsDir, "docker-config")
	if err := linkInto(filepath.Join(dir, "cli-plugins"), "docker-buildx", paths["docker-buildx"]); err != nil {
		return nil, err
	}
	user := os.Getenv("DOCKER_CONFIG")
	if user == "" {
		if home, err := os.UserHomeDir(); err == nil {
			user = filepath.Join(home, ".docker")
		}
	}
	if b, err := os.ReadFile(filepath.Join(user, "config.json")); err == nil && user != dir {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
			return nil, err
		}
	}
	ui.Info("BuildKit through the pinned docker-buildx plugin (DOCKER_CONFIG=%s)", dir)
	return []string{"DOCKER_CONFIG=" + dir}, nil
}

// withBuildkit is env with the variables of bk (buildkitEnv) in place of
// its own, and DOCKER_BUILDKIT=1.
func withBuildkit(env, bk []string) []string {
	drop := []string{"DOCKER_BUILDKIT"}
	for _, kv := range bk {
		k, _, _ := strings.Cut(kv, "=")
		drop = append(drop, k)
	}
	return append(withoutEnv(env, drop...), append(slices.Clone(bk), "DOCKER_BUILDKIT=1")...)
}

// linkInto makes dir/name a symbolic link to target, replacing another.
func linkInto(dir, name, target string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	link := filepath.Join(dir, name)
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	os.Remove(link)
	return os.Symlink(target, link)
}

// builtinBuildkitCLI returns the first docker on path whose CLI builds
// with BuildKit without buildx (18.09 up to 23.0), and its version.
func builtinBuildkitCLI(ctx context.Context, r *run.Runner, path string) (cli, version string) {
	seen := map[string]bool{}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, "docker")
		real, err := filepath.EvalSymlinks(p)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		out, err := r.Output(ctx, p, "--version")
		if err != nil {
			continue
		}
		if v, ok := builtinBuildkit(out); ok {
			return p, v
		}
	}
	return "", ""
}

// builtinBuildkit reads `docker --version` ("Docker version 20.10.24+dfsg1,
// build 297e128"): whether that CLI has BuildKit built in, and its version.
func builtinBuildkit(versionLine string) (string, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(versionLine), "Docker version ")
	if !ok {
		return "", false
	}
	v, _, _ = strings.Cut(v, ",")
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return "", false
	}
	return v, (major > 18 || major == 18 && minor >= 9) && major < 23
}

// envValue is the value of the variable name in env ("" when unset).
func envValue(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// withoutEnv drops the variables named from env.
func withoutEnv(env []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, k)
	})
}

// StandinPolicy lowers the CPU request of every container of the
// platform's pods (namespaces alt-*) to 10m on a kind cluster with stand-in
// sources: a stand-in uses almost nothing, and the dev profile's requests
// (about 2.8 CPUs, plus the control plane's) do not fit one node of a
// 2-core machine. The requests themselves are held by the static checks.
const StandinPolicy = `apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata:
  name: alt-standins-cpu
  labels: {app.kubernetes.io/managed-by: alt-platform}
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [pods]
  matchConditions:
    - name: platform-namespaces
      expression: request.namespace.startsWith('alt-')
  failurePolicy: Fail
  reinvocationPolicy: Never
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: >
          Object{
            spec: Object.spec{
              containers: object.spec.containers.map(c, Object.spec.containers{
                name: c.name,
                resources: Object.spec.containers.resources{requests: {"cpu": "10m"}}
              })
            }
          }
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata:
  name: alt-standins-cpu
  labels: {app.kubernetes.io/managed-by: alt-platform}
spec:
  policyName: alt-standins-cpu
`

func (e *Engine) standinRequests(ctx context.Context) error {
	f := filepath.Join(e.Repo, ".cache", "run", "standins-cpu-policy.yaml")
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(f, []byte(StandinPolicy), 0o644); err != nil {
		return err
	}
	if err := e.Runner.Run(ctx, "kubectl", "apply", "--server-side", "--field-manager=alt-platform", "-f", f); err != nil {
		return fmt.Errorf("MutatingAdmissionPolicy alt-standins-cpu (a kind cluster made before it was enabled needs ALT_KIND_RECREATE=1): %w", err)
	}
	ui.Warn("stand-in sources: every container of the platform requests 10m CPU on this cluster (MutatingAdmissionPolicy alt-standins-cpu); the charts' own requests are held by the static checks")
	return nil
}
