package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/ui"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DownOptions are what `down` was asked.
type DownOptions struct {
	// Layer is the layer to take down with every layer that needs it;
	// "" takes every layer down.
	Layer string
	// Purge, when it names the cluster (ClusterName), also deletes the
	// claims and the kept generated secrets of the releases taken down,
	// and with 01-foundation the platform's namespaces.
	Purge string
}

// ClusterName is the name `down -purge` must be given to confirm: sim,
// kind-<ALT_KIND_NAME>, or the kube context.
func (e *Engine) ClusterName() string {
	switch e.Cluster.Name() {
	case config.ClusterKind:
		return "kind-" + e.Cfg.KindName
	case config.ClusterContext:
		return e.Cfg.KubeContext
	}
	return e.Cluster.Name()
}

// Down uninstalls layers in reverse graph order (what needs a layer goes
// first), holding the deploy lock, and clears their records. Claims
// (PVCs) and generated secrets survive (helm.sh/resource-policy: keep, and
// StatefulSets' claims are not Helm's) unless Purge names the cluster. A
// cluster that is neither kind nor sim is refused unless ALT_FORCE_CONTEXT
// names its context, the same variable the deploy guard reads.
func (e *Engine) Down(ctx context.Context, o DownOptions) error {
	want := e.Stack.Names()
	if o.Layer != "" {
		l, err := e.FindLayer(o.Layer)
		if err != nil {
			return err
		}
		want = e.dependants(l)
	}
	// The root's requires order is a topological order of the graph:
	// reversed, what needs a layer comes before it.
	layers := slices.DeleteFunc(e.Stack.Names(), func(l string) bool { return !slices.Contains(want, l) })
	slices.Reverse(layers)
	if o.Purge != "" && o.Purge != e.ClusterName() {
		return fmt.Errorf("-purge=%s does not name this cluster; to delete the claims (PVCs) and generated secrets of %s for good, give -purge=%s",
			o.Purge, strings.Join(layers, ", "), e.ClusterName())
	}
	k, err := e.attachToChange(ctx, downGuard)
	if err != nil {
		return err
	}
	defer e.Close()
	purge := o.Purge != ""
	if purge {
		ui.Warn("-purge=%s: the claims (PVCs, with their data) and generated secrets of %s are deleted for good", o.Purge, strings.Join(layers, ", "))
	} else {
		ui.Info("claims (PVCs) and generated secrets are kept; the next deploy finds them again")
	}
	for i, l := range layers {
		if err := e.downLayer(ctx, k, l, purge); err != nil {
			done := "none"
			if i > 0 {
				done = strings.Join(layers[:i], ", ")
			}
			return fmt.Errorf("down stopped at layer %s: %w (already down: %s; run it again)", l, err, done)
		}
	}
	return nil
}

// downLayer uninstalls one layer's releases, last first, and clears its
// record; with purge it deletes what they kept.
func (e *Engine) downLayer(ctx context.Context, k *Kube, layer string, purge bool) error {
	l := e.Stack.Layer(layer)
	v, err := l.View(e.Cfg.Profile, func(key string) string { return e.Env[key] })
	if err != nil {
		return err
	}
	step := ui.Start("%s (%s): uninstall", layer, l.Dir)
	var did []string
	for i := len(v.Releases) - 1; i >= 0; i-- {
		r := v.Releases[i]
		hr, err := e.rel.Release(ctx, r.Name, r.Namespace)
		if err != nil {
			step.Fail()
			return err
		}
		if hr == nil {
			continue
		}
		if err := e.cmd.Run(ctx, "helm", "uninstall", r.Name, "--namespace", r.Namespace, "--wait", "--timeout", e.budget().String()); err != nil {
			step.Fail()
			return err
		}
		did = append(did, r.Namespace+"/"+r.Name)
		if purge {
			if err := e.purgeRelease(ctx, k, r.Name, r.Namespace); err != nil {
				step.Fail()
				return err
			}
		}
	}
	if err := e.state.ForgetRecord(ctx, layer); err != nil {
		step.Fail()
		return fmt.Errorf("uninstalled, but clearing its record failed: %w", err)
	}
	// Its releases are gone: no deploy of it can be rolled back to.
	if err := e.state.ForgetHistory(ctx, layer); err != nil {
		step.Fail()
		return fmt.Errorf("uninstalled, but clearing its history failed: %w", err)
	}
	if len(did) == 0 {
		step.Skip("nothing installed; record cleared")
	} else {
		step.Skip(fmt.Sprintf("uninstalled %s; record cleared (%s)", strings.Join(did, ", "), ui.Round(step.Elapsed())))
	}
	if purge && layer == e.Stack.Names()[0] {
		return e.purgeNamespaces(ctx, k)
	}
	return nil
}

// purgeRelease deletes what a release kept on uninstall: its claims (by
// the instance label or Helm's annotation) and its Secrets marked keep.
func (e *Engine) purgeRelease(ctx context.Context, k *Kube, name, namespace string) error {
	owned := func(labels, ann map[string]string) bool {
		return labels["app.kubernetes.io/instance"] == name || ann["meta.helm.sh/release-name"] == name
	}
	pvcs, err := k.Client.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, p := range pvcs.Items {
		if owned(p.Labels, p.Annotations) {
			if err := k.Client.CoreV1().PersistentVolumeClaims(namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
				return err
			}
			ui.Info("purged claim %s/%s", namespace, p.Name)
		}
	}
	secrets, err := k.Client.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, s := range secrets.Items {
		if s.Annotations["helm.sh/resource-policy"] == "keep" && owned(s.Labels, s.Annotations) {
			if err := k.Client.CoreV1().Secrets(namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil {
				return err
			}
			ui.Info("purged secret %s/%s", namespace, s.Name)
		}
	}
	return nil
}

// purgeNamespaces deletes the namespaces 01-foundation created and kept,
// with everything left in them, and waits until they are gone.
func (e *Engine) purgeNamespaces(ctx context.Context, k *Kube) error {
	nss, err := k.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var gone []string
	for _, ns := range nss.Items {
		if ns.Annotations["meta.helm.sh/release-name"] != "foundation" || ns.Annotations["helm.sh/resource-policy"] != "keep" {
			continue
		}
		if err := k.Client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
			return err
		}
		gone = append(gone, ns.Name)
	}
	step := ui.Start("purge namespaces %s", strings.Join(gone, ", "))
	wctx, cancel := context.WithTimeout(ctx, e.budget())
	defer cancel()
	for _, ns := range gone {
		for {
			if _, err := k.Client.CoreV1().Namespaces().Get(wctx, ns, metav1.GetOptions{}); err != nil {
				break
			}
			select {
			case <-wctx.Done():
				step.Fail()
				return fmt.Errorf("namespace %s still terminating after %s", ns, e.budget())
			case <-time.After(time.Second):
			}
		}
	}
	step.Done()
	return nil
}

// downGuard refuses to take layers down from a cluster that is neither kind
// nor sim (staging, prod, any other context) unless ALT_FORCE_CONTEXT names
// its context: the variable the deploy guard reads for the same decision.
func downGuard(cfg *config.Config, r Recognised) error {
	if r.Kind != "" || (cfg.ForceContext != "" && cfg.ForceContext == cfg.KubeContext) {
		return nil
	}
	return fmt.Errorf("ALT_KUBE_CONTEXT=%q (profile %s) is neither a kind nor a sim cluster (no node has a kind:// or kwok provider); down uninstalls layers there only when ALT_FORCE_CONTEXT names that context (ALT_FORCE_CONTEXT=%s)",
		cfg.KubeContext, cfg.Profile, cfg.KubeContext)
}

// attachToChange attaches to the cluster as it is to change it outside a
// deploy (down, rollback): the tools, the cluster running (sim: a dead
// component restarted, its state kept; context: the one-context
// kubeconfig written; a kind cluster is never made here), guard passed
// for what the cluster is, and the deploy lock held until Close.
func (e *Engine) attachToChange(ctx context.Context, guard func(*config.Config, Recognised) error) (*Kube, error) {
	if _, err := e.Tools.Ensure(ctx, "helm", "kubectl"); err != nil {
		return nil, err
	}
	if e.Cluster.Name() == config.ClusterContext || (e.Cluster.Name() == config.ClusterSim && e.Cluster.Kubeconfig() != "") {
		if _, err := e.Cluster.Ensure(ctx); err != nil {
			return nil, err
		}
	}
	k, err := e.Attach(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := k.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the cluster's nodes: %w", err)
	}
	if err := guard(e.Cfg, recognise(k.Config.Host, nodes.Items)); err != nil {
		return nil, err
	}
	if err := e.takeLock(ctx, k); err != nil {
		return nil, err
	}
	return k, nil
}
