package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/stack"
)

// The day-to-day targets (status, down, logs, open, watch) work on a
// platform that `dev` brought up. They share the run's configuration,
// stack, graph and cluster; Attach reaches the cluster without starting,
// building or locking anything.

// Attach connects to the run's cluster as it is: nothing is created,
// started, built or locked. It fails, saying so, when the cluster does not
// exist or does not answer.
func (e *Engine) Attach(ctx context.Context) (*Kube, error) {
	kc := e.Cluster.Kubeconfig()
	if kc == "" {
		return nil, fmt.Errorf("no %s cluster yet (nothing deployed): run `mage dev`", e.Cluster.Name())
	}
	e.decideCertManager(ctx, false)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	k, err := Connect(cctx, kc, "")
	if err != nil {
		hint := ""
		if e.Cluster.Name() == config.ClusterSim {
			hint = "; `mage sim:status` names a dead component, `mage sim:up` restarts it"
		}
		return nil, fmt.Errorf("%s cluster: %w%s", e.Cluster.Name(), err, hint)
	}
	e.kubeconfig = kc
	e.Runner.Env = e.Tools.Env(kc, e.envList()...)
	e.connect(k)
	return k, nil
}

// Service is one Helm release of the platform, as the day-to-day targets
// name it: by its release name.
type Service struct {
	Name, Namespace, Layer string
	Release                stack.Release
}

// Services are every release of the run's profile, in requires order.
func (e *Engine) Services() ([]Service, error) {
	var out []Service
	for _, l := range e.Stack.Layers {
		v, err := l.View(e.Cfg.Profile, func(k string) string { return e.Env[k] })
		if err != nil {
			return nil, err
		}
		for _, r := range v.Releases {
			out = append(out, Service{Name: r.Name, Namespace: r.Namespace, Layer: l.Name, Release: r})
		}
	}
	return out, nil
}

// FindServices resolves service names (release names, comma-separated
// lists allowed); an unknown name is an error listing the known ones.
func (e *Engine) FindServices(names ...string) ([]Service, error) {
	all, err := e.Services()
	if err != nil {
		return nil, err
	}
	var out []Service
	var unknown []string
	for _, arg := range names {
		for _, n := range strings.Split(arg, ",") {
			if n = strings.TrimSpace(n); n == "" {
				continue
			}
			i := slices.IndexFunc(all, func(s Service) bool { return s.Name == n })
			if i < 0 {
				unknown = append(unknown, n)
				continue
			}
			if !slices.ContainsFunc(out, func(s Service) bool { return s.Name == n }) {
				out = append(out, all[i])
			}
		}
	}
	if len(unknown) > 0 || len(out) == 0 {
		var known []string
		for _, s := range all {
			known = append(known, s.Name)
		}
		sort.Strings(known)
		what := "no service named"
		if len(unknown) > 0 {
			what = fmt.Sprintf("unknown service %s", strings.Join(unknown, ", "))
		}
		return nil, fmt.Errorf("%s (profile %s); the known services are: %s", what, e.Cfg.Profile, strings.Join(known, ", "))
	}
	return out, nil
}

// FindLayer resolves a layer by its config name (alt-operations), its
// short name (operations), its folder (08-operations) or its number (08).
func (e *Engine) FindLayer(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	var names []string
	for _, l := range e.Stack.Layers {
		short := strings.TrimPrefix(l.Name, "alt-")
		num, _, _ := strings.Cut(l.Dir, "-")
		if n == l.Name || n == short || n == l.Dir || n == num || n == strings.ReplaceAll(short, "-", "") {
			return l.Name, nil
		}
		names = append(names, short)
	}
	return "", fmt.Errorf("no layer %q; the layers are: %s (or their folders, e.g. 08-operations, or numbers, e.g. 08)", name, strings.Join(names, ", "))
}

// dependants are layer and every layer that needs it, directly or not.
func (e *Engine) dependants(layer string) []string {
	out := []string{layer}
	for _, l := range e.Stack.Names() {
		if l != layer && e.Graph.DependsOn(l, layer) {
			out = append(out, l)
		}
	}
	return out
}
