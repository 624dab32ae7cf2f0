package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/alt-platform/orchestration/internal/config"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func node(name, providerID string, ann map[string]string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, Spec: corev1.NodeSpec{ProviderID: providerID}}
}

func TestClustersAreRecognisedByWhatTheyAre(t *testing.T) {
	kwok := map[string]string{"kwok.x-k8s.io/node": "fake"}
	for _, tt := range []struct {
		host  string
		nodes []corev1.Node
		want  string
	}{
		{"https://127.0.0.1:39615", []corev1.Node{node("alt-control-plane", "kind://docker/alt/alt-control-plane", nil)}, config.ClusterKind},
		{"https://127.0.0.1:6443", []corev1.Node{node("sim-1", "", kwok)}, config.ClusterSim},
		{"https://[::1]:6443", []corev1.Node{node("sim-1", "kwok://sim-1", nil)}, config.ClusterSim},
		// A kube context named kind-alt that points at a cloud cluster.
		{"https://35.1.2.3", []corev1.Node{node("gke-pool-1", "gce://proj/europe-west1-b/gke-pool-1", nil)}, ""},
		// kwok nodes behind a remote API server are not this repository's sim.
		{"https://10.0.0.5:6443", []corev1.Node{node("sim-1", "", kwok)}, ""},
	} {
		if got := recognise(tt.host, tt.nodes); got.Kind != tt.want {
			t.Errorf("%s %v: %q (%s), want %q", tt.host, tt.nodes[0].Spec.ProviderID, got.Kind, got.Why, tt.want)
		}
	}
}

func TestProfileGuard(t *testing.T) {
	kind := Recognised{config.ClusterKind, "node x has provider ID kind://docker/alt/x"}
	for _, tt := range []struct {
		cfg  config.Config
		r    Recognised
		want string
	}{
		{config.Config{Profile: "prod", Cluster: config.ClusterContext, KubeContext: "gke-prod"}, kind, "ALT_PROFILE=prod refuses this cluster: it is a kind cluster (node x has provider ID kind://docker/alt/x)"},
		{config.Config{Profile: "prod", Cluster: config.ClusterContext, KubeContext: "kind-alt"}, Recognised{}, ""},
		{config.Config{Profile: "dev", Cluster: config.ClusterContext, KubeContext: "kind-alt"}, Recognised{}, "set ALT_FORCE_CONTEXT=kind-alt"},
		{config.Config{Profile: "dev", Cluster: config.ClusterContext, KubeContext: "mine"}, kind, ""},
		{config.Config{Profile: "dev", Cluster: config.ClusterContext, KubeContext: "gke", ForceContext: "gke"}, Recognised{}, ""},
	} {
		err := profileGuard(&tt.cfg, tt.r)
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s on %s (%q): %v, want %q", tt.cfg.Profile, tt.cfg.KubeContext, tt.r.Kind, err, tt.want)
		}
	}
}

func TestFirstDeployBindsTheClusterToItsProfile(t *testing.T) {
	k := &Kube{Client: fake.NewClientset()}
	ctx := context.Background()
	if err := bindProfile(ctx, k, "staging", false); err != nil {
		t.Fatal(err)
	}
	err := bindProfile(ctx, k, "prod", false)
	if err == nil || !strings.Contains(err.Error(), "this cluster is bound to profile staging") || !strings.Contains(err.Error(), "ALT_PROFILE=prod refused") ||
		!strings.Contains(err.Error(), "ALT_OTHER_PROFILE=1") {
		t.Fatalf("prod on a staging cluster: %v", err)
	}
	if err := bindProfile(ctx, k, "prod", true); err != nil {
		t.Fatalf("ALT_OTHER_PROFILE=1: %v", err)
	}
	if err := bindProfile(ctx, k, "staging", false); err == nil || !strings.Contains(err.Error(), "bound to profile prod") {
		t.Fatalf("after rebinding: %v", err)
	}
	// A cluster deployed before bindings existed: its records name the profile.
	k = &Kube{Client: fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: stateConfigMap, Namespace: stateNamespace},
		Data: map[string]string{"alt-foundation": Record{Digest: "d", Profile: "dev"}.encode()}})}
	if err := bindProfile(ctx, k, "prod", false); err == nil || !strings.Contains(err.Error(), "bound to profile dev") {
		t.Fatalf("records of dev: %v", err)
	}
}

// secretsWithPreconditions makes the fake API server honour delete
// preconditions, as the real one does.
func secretsWithPreconditions(c *fake.Clientset) {
	c.PrependReactor("delete", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.DeleteActionImpl)
		obj, err := c.Tracker().Get(a.GetResource(), a.GetNamespace(), d.Name)
		if err != nil {
			return true, nil, err
		}
		s := obj.(*corev1.Secret)
		if p := d.DeleteOptions.Preconditions; p != nil {
			if (p.UID != nil && *p.UID != s.UID) || (p.ResourceVersion != nil && *p.ResourceVersion != s.ResourceVersion) {
				return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), d.Name, nil)
			}
		}
		return false, nil, nil
	})
}

func TestPendingRecoveryRemovesOnlyTheRecordItInspected(t *testing.T) {
	rec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1.kratos.v3", Namespace: "alt-auth", UID: "u1", ResourceVersion: "10"}}
	c := fake.NewClientset(rec)
	secretsWithPreconditions(c)
	k := &Kube{Client: c}
	ctx := context.Background()
	inspected := &HelmRelease{Name: "kratos", Namespace: "alt-auth", Revision: 3, Status: "pending-upgrade",
		Record: rec.Name, UID: "u1", ResourceVersion: "9"}
	// Helm rewrote the record (resourceVersion 10) after it was inspected.
	if _, err := k.removeRecord(ctx, inspected); err == nil || !strings.Contains(err.Error(), "changed while this run inspected it") {
		t.Fatalf("stale record: %v", err)
	}
	if _, err := c.CoreV1().Secrets("alt-auth").Get(ctx, rec.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("a record that changed after inspection was removed: %v", err)
	}
	inspected.ResourceVersion = "10"
	did, err := k.removeRecord(ctx, inspected)
	if err != nil || !strings.Contains(did, "was left pending-upgrade at revision 3") {
		t.Fatalf("%q, %v", did, err)
	}
	if _, err := c.CoreV1().Secrets("alt-auth").Get(ctx, rec.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the inspected record is still there: %v", err)
	}
}
