package engine

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/ui"
	"github.com/bitfield/script"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LogOptions are what `logs` was asked.
type LogOptions struct {
	Since    string // e.g. 10m: only lines newer than that
	Previous bool   // the previous container of each pod (after a restart)
	Grep     string // a regular expression: only the lines that match
}

// Logs follows every pod of a service, each line prefixed by its pod and
// container. On the sim cluster no container runs: it says so and shows
// the service's pods and their events instead.
func (e *Engine) Logs(ctx context.Context, s Service, o LogOptions) error {
	var grep *regexp.Regexp
	if o.Grep != "" {
		var err error
		if grep, err = regexp.Compile(o.Grep); err != nil {
			return fmt.Errorf("-grep=%s: %w", o.Grep, err)
		}
	}
	k, err := e.Attach(ctx)
	if err != nil {
		return err
	}
	if e.Cluster.Name() == config.ClusterSim {
		return e.simLogs(ctx, k, s)
	}
	if _, err := e.Tools.Ensure(ctx, "kubectl"); err != nil {
		return err
	}
	if e.Cluster.Name() != config.ClusterKind {
		ui.Warn("logs on a %s cluster is not yet verified by this repository's tests (its kind and sim sides are)", e.Cluster.Name())
	}
	args := []string{"logs", "--namespace", s.Namespace, "--selector", "app.kubernetes.io/instance=" + s.Name,
		"--all-containers", "--prefix", "--max-log-requests", "50", "--ignore-errors"}
	if o.Since != "" {
		args = append(args, "--since", o.Since)
	}
	if o.Previous {
		args = append(args, "--previous")
	} else {
		args = append(args, "--follow")
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(e.Runner.Stream(ctx, pw, "kubectl", args...)) }()
	p := script.NewPipe().WithReader(pr)
	if grep != nil {
		p = p.MatchRegexp(grep)
	}
	_, err = p.WithStdout(os.Stdout).Stdout()
	if ctx.Err() != nil {
		return nil // Ctrl-C ends a follow
	}
	return err
}

// simLogs is what logs can show where no container runs: the pods of the
// service and their latest events, and its workloads' events.
func (e *Engine) simLogs(ctx context.Context, k *Kube, s Service) error {
	ui.Banner(fmt.Sprintf("sim cluster: NO CONTAINER RUNS, so %s has no logs.", s.Name),
		"Its pods and their events instead (kind runs the containers: ALT_CLUSTER=kind).")
	pods, err := k.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + s.Name})
	if err != nil {
		return err
	}
	if len(pods.Items) == 0 {
		ui.Info("no pod of %s in %s (is %s deployed? `mage status` says)", s.Name, s.Namespace, s.Layer)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		state := "ready"
		if why := podProblem(p); why != "" {
			state = why
		}
		node := "no node"
		if p.Spec.NodeName != "" {
			node = "node " + p.Spec.NodeName
		}
		ui.Info("pod %s/%s (%s): %s, %s", p.Namespace, p.Name, node, p.Status.Phase, state)
		for _, ev := range k.events(ctx, p.Namespace, p.Name, 10) {
			ui.Info("  event: %s", ev)
		}
	}
	if hr, err := e.rel.Release(ctx, s.Name, s.Namespace); err == nil && hr != nil {
		for _, id := range hr.Objects {
			switch id.GroupKind.Kind {
			case "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob":
				for _, ev := range k.events(ctx, id.Namespace, id.Name, 5) {
					ui.Info("%s %s: %s", id.GroupKind.Kind, nsName(id), ev)
				}
			}
		}
	}
	return nil
}

// Open makes the platform's entry (nginx-external) and Grafana reachable
// from this machine and prints their URLs: on kind the entry is the mapped
// host port and Grafana a port-forward; on a context both are
// port-forwards. Port-forwards last until ctx ends (Ctrl-C). The sim
// cluster has nothing to open: no container runs.
func (e *Engine) Open(ctx context.Context) error {
	if e.Cluster.Name() == config.ClusterSim {
		return fmt.Errorf("nothing to open: on the sim cluster no container runs, so nothing answers on any port (`mage status` shows what is deployed; ALT_CLUSTER=kind runs the containers)")
	}
	k, err := e.Attach(ctx)
	if err != nil {
		return err
	}
	if _, err := e.Tools.Ensure(ctx, "kubectl"); err != nil {
		return err
	}
	if e.Cluster.Name() != config.ClusterKind {
		ui.Warn("open on a %s cluster is not yet verified by this repository's tests (its kind side is)", e.Cluster.Name())
	}
	type forward struct{ what, ns, svc string }
	var fwds []forward
	if e.Cluster.Name() == config.ClusterKind {
		ui.Info("platform: %s (nginx-external on the kind node's mapped host port)", e.EntryURL())
	} else {
		fwds = append(fwds, forward{"platform", "alt-ingress", "nginx-external"})
	}
	fwds = append(fwds, forward{"grafana", "alt-observability", "monitoring-grafana"})
	var wg sync.WaitGroup
	errs := make(chan error, len(fwds))
	for _, f := range fwds {
		svc, err := k.Client.CoreV1().Services(f.ns).Get(ctx, f.svc, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("%s: Service %s/%s: %w (is its layer deployed? `mage status` says)", f.what, f.ns, f.svc, err)
		}
		if len(svc.Spec.Ports) == 0 {
			return fmt.Errorf("%s: Service %s/%s has no port", f.what, f.ns, f.svc)
		}
		local, err := freePort()
		if err != nil {
			return err
		}
		remote := svc.Spec.Ports[0].Port
		ui.Info("%s: http://127.0.0.1:%d/ (port-forward to svc/%s:%d in %s)", f.what, local, f.svc, remote, f.ns)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.Runner.Run(ctx, "kubectl", "--namespace", f.ns, "port-forward", "--address", "127.0.0.1",
				"svc/"+f.svc, fmt.Sprintf("%d:%d", local, remote))
			if ctx.Err() == nil {
				errs <- fmt.Errorf("%s: the port-forward ended: %w", f.what, err)
			}
		}()
	}
	ui.Info("Ctrl-C stops the port-forwards")
	wg.Wait()
	close(errs)
	var msgs []string
	for err := range errs {
		msgs = append(msgs, err.Error())
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%s", strings.Join(msgs, "\n"))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
