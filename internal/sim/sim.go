// Package sim is the `sim` cluster provider: a real Kubernetes control plane
// on loopback whose nodes are simulated by kwok, for machines without
// Docker.
//
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and a
// small storage provisioner run as background processes that outlive the
// mage run. Deployments become Available, StatefulSets Ready, Jobs Complete
// and PersistentVolumeClaims Bound without any container running, so the
// whole deploy path (Helm, Skaffold, hooks, readiness, Pod Security
// admission, ordering of CRDs and namespaces) runs against a real API
// server.
//
// What a simulation cannot do is stated, not hidden: admission webhooks are
// not called (the two webhook admission plugins are off, since no pod runs
// to serve them, and a deploy must never hang on them), and neither are
// CRD conversion webhooks nor aggregated APIs backed by pods. Pods run no
// code: logs, exec and port-forward do not work.
//
// Everything of a cluster lives in <repo>/.cache/sim: the kubeconfig,
// certificates, etcd data, logs, PIDs and ports.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/alt-platform/orchestration/internal/flock"

	"github.com/alt-platform/orchestration/internal/run"
	"github.com/alt-platform/orchestration/internal/tools"
	"github.com/alt-platform/orchestration/internal/ui"
)

// Cluster is one simulated cluster and the folder that holds it.
type Cluster struct {
	// Dir holds the cluster's kubeconfig, certificates, etcd data, logs,
	// PIDs and ports.
	Dir string
	// Cache provides the pinned control-plane binaries; the provisioner is
	// built into it too.
	Cache *tools.Cache
	// Runner runs kubectl and go build.
	Runner *run.Runner
}

// New returns the cluster of the repository at repoRoot, kept in
// <repoRoot>/.cache/sim.
func New(repoRoot string, cache *tools.Cache, r *run.Runner) *Cluster {
	return &Cluster{Dir: filepath.Join(repoRoot, ".cache", "sim"), Cache: cache, Runner: r}
}

// Kubeconfig is the path of the cluster admin's kubeconfig.
func (c *Cluster) Kubeconfig() string { return c.layout().kubeconfig() }

func (c *Cluster) layout() layout { return layout{dir: c.Dir} }

// Component is the health of one process of the cluster.
type Component struct {
	Name    string
	PID     int  // recorded PID; 0 when none is recorded
	Running bool // the recorded process is alive
	Healthy bool // and its health endpoint answers
	Detail  string
	Log     string
}

// state is what a cluster records besides PIDs.
type state struct {
	Ports Ports `json:"ports"`
}

func (c *Cluster) readState() (*state, error) {
	b, err := os.ReadFile(c.layout().state())
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", c.layout().state(), err)
	}
	return &st, nil
}

func (c *Cluster) writeState(st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(c.layout().state(), append(b, '\n'), 0o644)
}

// Up starts the cluster, or restarts the components that are down, and
// returns the admin kubeconfig path once every component is healthy and
// every simulated node can take pods. A cluster that is already up costs a
// few health probes. State in etcd is kept across Down and Up.
func (c *Cluster) Up(ctx context.Context) (string, error) {
	l := c.layout()
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("sim: %w", err)
	}
	unlock, err := flock.Lock(ctx, l.path(".lock"))
	if err != nil {
		return "", fmt.Errorf("sim: lock %s: %w", c.Dir, err)
	}
	defer unlock()

	bins, err := c.binaries(ctx)
	if err != nil {
		return "", err
	}
	st, _ := c.readState()
	var comps []Component
	if st != nil && exists(l.kubeconfig()) {
		if pr, err := newProber(l.pki()); err == nil {
			comps = c.check(ctx, st, pr)
			if allHealthy(comps) && pr.nodesReady(ctx, apiURL(st.Ports)) == nil {
				ui.Start("sim cluster in %s", c.Dir).Skip("already up")
				warnWebhooks()
				return l.kubeconfig(), nil
			}
		}
	}
	if err := c.start(ctx, st, comps, bins); err != nil {
		return "", err
	}
	warnWebhooks()
	return l.kubeconfig(), nil
}

func warnWebhooks() {
	ui.Warn("sim: admission webhooks are not called (no pod runs to serve them); nor are CRD conversion webhooks or aggregated APIs backed by pods")
}

func apiURL(p Ports) string { return fmt.Sprintf("https://127.0.0.1:%d", p.APIServer) }

func allHealthy(comps []Component) bool {
	for _, c := range comps {
		if !c.Healthy {
			return false
		}
	}
	return len(comps) > 0
}

// start brings every component up, keeping those that are healthy; comps
// is their last check (nil when unknown).
func (c *Cluster) start(ctx context.Context, st *state, comps []Component, bins map[string]string) error {
	l := c.layout()
	total := ui.Start("sim cluster in %s", c.Dir)
	fail := func(err error) error { total.Fail(); return err }

	for _, d := range []string{"logs", "pids", "kubeconfigs", "kwok", "manifests"} {
		if err := os.MkdirAll(l.path(d), 0o755); err != nil {
			return fail(fmt.Errorf("sim: %w", err))
		}
	}
	if err := l.pki().ensure(serviceIP); err != nil {
		return fail(fmt.Errorf("sim: certificates in %s: %w; `mage sim:reset` starts a new cluster", l.pki().dir, err))
	}
	pr, err := newProber(l.pki())
	if err != nil {
		return fail(fmt.Errorf("sim: %w", err))
	}

	if st != nil && comps == nil {
		comps = c.check(ctx, st, pr)
	}
	ports, restart, err := choosePorts(st, comps)
	if err != nil {
		return fail(err)
	}
	if st != nil && ports != st.Ports {
		ui.Info("a port of the cluster is taken by another program: new ports, new kubeconfig")
	}
	if restart {
		ui.Info("restarting every component on the new ports")
		if err := c.stopAll(ctx); err != nil {
			return fail(err)
		}
	}
	if err := c.writeState(&state{Ports: ports}); err != nil {
		return fail(fmt.Errorf("sim: %w", err))
	}
	if err := c.writeKubeconfigs(ports); err != nil {
		return fail(fmt.Errorf("sim: kubeconfigs: %w", err))
	}

	byName := map[string]component{}
	for _, cp := range components(l, ports, bins) {
		byName[cp.name] = cp
	}
	for _, n := range []string{Etcd, APIServer} {
		if err := c.ensureRunning(ctx, pr, byName[n], nil); err != nil {
			return fail(err)
		}
	}
	// The rest only need the API server: start them together, and create
	// the nodes and the StorageClass meanwhile.
	rest := []func() error{func() error { return c.bootstrap(ctx, bins["kubectl"]) }}
	for _, n := range []string{ControllerManager, Scheduler, Kwok, Provisioner} {
		var before func() error
		if n == Kwok {
			before = func() error { return pr.releaseNodeLeases(ctx, apiURL(ports)) }
		}
		rest = append(rest, func() error { return c.ensureRunning(ctx, pr, byName[n], before) })
	}
	if err := parallel(rest...); err != nil {
		return fail(err)
	}

	step := ui.Start("sim: %d simulated nodes ready", NodeCount)
	if err := waitFor(ctx, 60*time.Second, func() error { return pr.nodesReady(ctx, apiURL(ports)) }); err != nil {
		step.Fail()
		return fail(fmt.Errorf("sim: simulated nodes not ready: %w\n  see %s and %s", err, l.logFile(Kwok), l.logFile(ControllerManager)))
	}
	step.Done()
	total.Done()
	ui.Info("kubeconfig: %s", l.kubeconfig())
	return nil
}

// choosePorts keeps the recorded ports while the components that must
// start can bind theirs; otherwise it picks new ones, and restart tells
// that the components still running must be restarted on them.
func choosePorts(st *state, comps []Component) (p Ports, restart bool, err error) {
	if st == nil {
		p, err = pickPorts()
		return p, false, err
	}
	anyRunning, blocked := false, false
	for _, cp := range comps {
		anyRunning = anyRunning || cp.Running
		if cp.Running {
			continue
		}
		for _, port := range st.Ports.of(cp.Name) {
			if !portFree(port) {
				blocked = true
			}
		}
	}
	if !blocked {
		return st.Ports, false, nil
	}
	p, err = pickPorts()
	return p, anyRunning, err
}

// ensureRunning keeps a healthy component and (re)starts one that is not,
// calling before (when not nil) right before it starts the process.
func (c *Cluster) ensureRunning(ctx context.Context, pr *prober, cp component, before func() error) error {
	l := c.layout()
	if p, err := readPidFile(l.pidFile(cp.name)); err == nil && p.alive() {
		if pr.probe(ctx, cp.health) == nil {
			return nil
		}
		// Alive but unhealthy: it may be starting, or waiting for etcd or
		// the API server that just came back.
		if pr.waitHealthy(ctx, cp.health, 10*time.Second, p.alive) == nil {
			return nil
		}
		ui.Info("%s (pid %d) is running but not healthy: restarting it", cp.name, p.PID)
		if _, err := stop(ctx, p, stopGrace(cp.name)); err != nil {
			return fmt.Errorf("sim: stop %s: %w", cp.name, err)
		}
	}
	step := ui.Start("sim: start %s", cp.name)
	if before != nil {
		if err := before(); err != nil {
			step.Fail()
			return fmt.Errorf("sim: before starting %s: %w", cp.name, err)
		}
	}
	p, err := spawn(cp.bin, cp.args, append(os.Environ(), cp.env...), c.Dir, l.logFile(cp.name))
	if err != nil {
		step.Fail()
		return fmt.Errorf("sim: start %s: %w", cp.name, err)
	}
	if err := writeFileAtomic(l.pidFile(cp.name), []byte(p.String()), 0o644); err != nil {
		step.Fail()
		stop(ctx, p, time.Second)
		return fmt.Errorf("sim: record pid of %s: %w", cp.name, err)
	}
	if err := pr.waitHealthy(ctx, cp.health, 60*time.Second, p.alive); err != nil {
		step.Fail()
		return fmt.Errorf("sim: %s (pid %d) did not become healthy: %w\n  last lines of %s:\n%s\n  fix the cause, then `mage sim:up` again (or `mage sim:reset` for a new cluster)",
			cp.name, p.PID, err, l.logFile(cp.name), tailFile(l.logFile(cp.name), 15))
	}
	step.Done()
	return nil
}

// bootstrap creates the simulated nodes and the default StorageClass.
func (c *Cluster) bootstrap(ctx context.Context, kubectl string) error {
	l := c.layout()
	file := l.path("manifests", "bootstrap.yaml")
	if err := writeFileAtomic(file, []byte(bootstrapManifest(kubeVersion())), 0o644); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	step := ui.Start("sim: %d nodes (%s CPU, %s, %s pods each) and default StorageClass %q", NodeCount, nodeCPU, nodeMemory, nodePods, StorageClass)
	err := c.Runner.Run(ctx, kubectl, "--kubeconfig", l.kubeconfig(), "apply", "-f", file)
	if err := step.End(err); err != nil {
		return fmt.Errorf("sim: create nodes and StorageClass: %w", err)
	}
	return nil
}

func (c *Cluster) writeKubeconfigs(p Ports) error {
	l, k := c.layout(), c.layout().pki()
	admin, err := kubeconfig(apiURL(p), k.crt("ca"), k.crt("admin"), k.key("admin"), true)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.kubeconfig(), admin, 0o600); err != nil {
		return err
	}
	for _, n := range []string{ControllerManager, Scheduler, Kwok} {
		kc, err := kubeconfig(apiURL(p), k.crt("ca"), k.crt(n), k.key(n), false)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(l.componentConfig(n), kc, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// check reports every component's health, probing them concurrently.
func (c *Cluster) check(ctx context.Context, st *state, pr *prober) []Component {
	l := c.layout()
	comps := components(l, st.Ports, nil)
	out := make([]Component, len(comps))
	var wg sync.WaitGroup
	for i, cp := range comps {
		wg.Go(func() {
			r := Component{Name: cp.name, Log: l.logFile(cp.name)}
			p, err := readPidFile(l.pidFile(cp.name))
			switch {
			case errors.Is(err, os.ErrNotExist):
				r.Detail = "not started (no pid file)"
			case err != nil:
				r.Detail = err.Error()
			case !p.alive():
				r.PID, r.Detail = p.PID, fmt.Sprintf("process %d is gone", p.PID)
			default:
				r.PID, r.Running = p.PID, true
				if err := pr.probe(ctx, cp.health); err != nil {
					r.Detail = err.Error()
				} else {
					r.Healthy, r.Detail = true, cp.health+": ok"
				}
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

// Status reports the health of every component and of the simulated nodes.
// The error names every component that is down and says what to do.
func (c *Cluster) Status(ctx context.Context) ([]Component, error) {
	l := c.layout()
	st, err := c.readState()
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("sim: no cluster in %s: run `mage sim:up`", c.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("sim: %w; `mage sim:reset` starts a new cluster", err)
	}
	pr, err := newProber(l.pki())
	if err != nil {
		return nil, fmt.Errorf("sim: %w; `mage sim:reset` starts a new cluster", err)
	}
	comps := c.check(ctx, st, pr)
	nodes := Component{Name: "nodes", Detail: "unknown: kube-apiserver is down"}
	if comps[1].Healthy {
		if err := pr.nodesReady(ctx, apiURL(st.Ports)); err != nil {
			nodes.Detail = err.Error()
		} else {
			nodes.Running, nodes.Healthy, nodes.Detail = true, true, fmt.Sprintf("%d simulated nodes Ready", NodeCount)
		}
	}
	comps = append(comps, nodes)
	var down []string
	for _, cp := range comps {
		if !cp.Healthy {
			down = append(down, fmt.Sprintf("%s (%s)", cp.Name, cp.Detail))
		}
	}
	if len(down) > 0 {
		return comps, fmt.Errorf("sim: down: %s\n  `mage sim:up` restarts what is down; logs in %s", strings.Join(down, "; "), l.path("logs"))
	}
	return comps, nil
}

// Down stops every process of the cluster by its recorded PID: the
// clients first, then the API server, then etcd, each with a bounded wait
// before SIGKILL. With wipe it also deletes the cluster's state, so the
// next Up starts an empty cluster.
func (c *Cluster) Down(ctx context.Context, wipe bool) error {
	l := c.layout()
	if !exists(c.Dir) {
		ui.Start("sim cluster in %s", c.Dir).Skip("none")
		return nil
	}
	unlock, err := flock.Lock(ctx, l.path(".lock"))
	if err != nil {
		return fmt.Errorf("sim: lock %s: %w", c.Dir, err)
	}
	defer unlock()
	verb := "stop"
	if wipe {
		verb = "stop and delete"
	}
	step := ui.Start("sim: %s cluster in %s", verb, c.Dir)
	if err := c.stopAll(ctx); err != nil {
		step.Fail()
		return err
	}
	if wipe {
		entries, err := os.ReadDir(c.Dir)
		if err != nil {
			step.Fail()
			return fmt.Errorf("sim: %w", err)
		}
		for _, e := range entries {
			if e.Name() == ".lock" {
				continue
			}
			if err := os.RemoveAll(filepath.Join(c.Dir, e.Name())); err != nil {
				step.Fail()
				return fmt.Errorf("sim: delete cluster state: %w", err)
			}
		}
	}
	step.Done()
	return nil
}

// stopAll stops every recorded process in stopOrder.
func (c *Cluster) stopAll(ctx context.Context) error {
	l := c.layout()
	for _, group := range stopOrder {
		var fns []func() error
		for _, n := range group {
			fns = append(fns, func() error {
				p, err := readPidFile(l.pidFile(n))
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("sim: %s: %w", n, err)
				}
				start := time.Now()
				killed, err := stop(ctx, p, stopGrace(n))
				if err != nil {
					return fmt.Errorf("sim: stop %s (pid %d): %w", n, p.PID, err)
				}
				if killed {
					ui.Info("%s (pid %d) ignored SIGTERM for %s: killed", n, p.PID, ui.Round(time.Since(start)))
				}
				return os.Remove(l.pidFile(n))
			})
		}
		if err := parallel(fns...); err != nil {
			return err
		}
	}
	return nil
}

// binaries returns the path of every binary the cluster runs, building
// what is missing.
func (c *Cluster) binaries(ctx context.Context) (map[string]string, error) {
	bins, err := c.Cache.Ensure(ctx, tools.Sim...)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	prov, err := c.provisioner(ctx)
	if err != nil {
		return nil, fmt.Errorf("sim: build %s: %w", Provisioner, err)
	}
	bins[Provisioner] = prov
	return bins, nil
}

// parallel runs fns concurrently and joins their errors.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitFor polls fn until it returns nil or d passes.
func waitFor(ctx context.Context, d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", d, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
