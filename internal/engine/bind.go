package engine

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/ui"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// annProfile on the state ConfigMap is the profile the cluster is bound
// to: the profile of its first deploy.
const annProfile = "alt-platform.io/profile"

// Recognised is what a cluster is, told by what it is rather than by the
// name of its kube context.
type Recognised struct {
	Kind string // config.ClusterKind, config.ClusterSim, or "" (another cluster)
	Why  string // the evidence, for messages
}

// recognise tells kind and sim clusters by their API server address (a
// local cluster serves on loopback) and their nodes: kind's have provider
// IDs kind://..., the sim's are kwok nodes (provider ID kwok://..., or the
// kwok.x-k8s.io/node annotation).
func recognise(host string, nodes []corev1.Node) Recognised {
	loopback := false
	if u, err := url.Parse(host); err == nil {
		h := u.Hostname()
		ip := net.ParseIP(h)
		loopback = h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	for _, n := range nodes {
		switch {
		case strings.HasPrefix(n.Spec.ProviderID, "kind://"):
			return Recognised{config.ClusterKind, fmt.Sprintf("node %s has provider ID %s", n.Name, n.Spec.ProviderID)}
		case strings.HasPrefix(n.Spec.ProviderID, "kwok://") || n.Annotations["kwok.x-k8s.io/node"] != "":
			if loopback {
				return Recognised{config.ClusterSim, fmt.Sprintf("node %s is simulated by kwok and the API server is %s", n.Name, host)}
			}
		}
	}
	return Recognised{}
}

// profileGuard refuses staging and prod on a kind or sim cluster, and dev
// on any other cluster unless ALT_FORCE_CONTEXT names its context.
func profileGuard(cfg *config.Config, r Recognised) error {
	switch {
	case cfg.Profile != "dev" && r.Kind == config.ClusterSim && cfg.TestSimProfiles:
		ui.Banner(fmt.Sprintf("TEST SWITCH ALT_TEST_SIM_PROFILES=1: deploying profile %s to a sim cluster (%s); the profile guard is off for this run. Never set it for a real deploy.", cfg.Profile, r.Why))
		return nil
	case cfg.Profile != "dev" && r.Kind != "":
		return fmt.Errorf("ALT_PROFILE=%s refuses this cluster: it is a %s cluster (%s); staging and prod deploy only to a real cluster", cfg.Profile, r.Kind, r.Why)
	case cfg.Profile == "dev" && r.Kind == "" && cfg.Cluster == config.ClusterContext && cfg.ForceContext != cfg.KubeContext:
		return fmt.Errorf("ALT_KUBE_CONTEXT=%q: the dev profile deploys only to kind or sim clusters; to deploy dev to this context anyway set ALT_FORCE_CONTEXT=%s (this cluster is neither: no node has a kind:// or kwok provider)", cfg.KubeContext, cfg.KubeContext)
	}
	return nil
}

// bindCluster checks that the cluster suits the run's profile and binds
// it to that profile on its first deploy.
func (e *Engine) bindCluster(ctx context.Context, k *Kube) error {
	nodes, err := k.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the cluster's nodes: %w", err)
	}
	if err := profileGuard(e.Cfg, recognise(k.Config.Host, nodes.Items)); err != nil {
		return err
	}
	return bindProfile(ctx, k, e.Cfg.Profile, e.Cfg.OtherProfile)
}

// bindProfile records profile in the cluster on its first deploy; a
// cluster bound to another profile is refused unless other is set, when
// it is bound to profile instead. A cluster deployed before bindings
// existed is bound to the profile of its layer records.
func bindProfile(ctx context.Context, k *Kube, profile string, other bool) error {
	cms := k.Client.CoreV1().ConfigMaps(stateNamespace)
	for range 5 {
		cm, err := cms.Get(ctx, stateConfigMap, metav1.GetOptions{})
		exists := err == nil
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: stateConfigMap, Namespace: stateNamespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "alt-platform"}}}
		} else if err != nil {
			return err
		}
		bound := boundProfile(cm)
		if bound == profile {
			return nil
		}
		if bound != "" && !other {
			return fmt.Errorf("this cluster is bound to profile %s (ConfigMap %s/%s, annotation %s, written by its first deploy); ALT_PROFILE=%s refused. Deploy %s here, or set ALT_OTHER_PROFILE=1 to deploy %s and bind the cluster to it",
				bound, stateNamespace, stateConfigMap, annProfile, profile, bound, profile)
		}
		if bound != "" {
			ui.Warn("ALT_OTHER_PROFILE=1: this cluster was bound to profile %s; deploying %s and binding it to %s", bound, profile, profile)
		}
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[annProfile] = profile
		if !exists {
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		} else {
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return fmt.Errorf("ConfigMap %s/%s kept changing while this run bound the cluster to profile %s; try again", stateNamespace, stateConfigMap, profile)
}

// boundProfile is the profile a state ConfigMap binds its cluster to.
func boundProfile(cm *corev1.ConfigMap) string {
	if p := cm.Annotations[annProfile]; p != "" {
		return p
	}
	for _, s := range cm.Data {
		if r, err := decodeRecord(s); err == nil && r.Profile != "" {
			return r.Profile
		}
	}
	return ""
}
