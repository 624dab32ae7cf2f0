package kind

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	kindcmd "sigs.k8s.io/kind/pkg/cmd"
)

// kindLib is Lib on the kind library with the Docker node provider and
// kind's own progress lines (" ✓ Preparing nodes 📦") on stderr.
type kindLib struct{ p *cluster.Provider }

func newKindLib() Lib {
	return kindLib{cluster.NewProvider(cluster.ProviderWithLogger(kindcmd.NewLogger()), cluster.ProviderWithDocker())}
}

func (k kindLib) List() ([]string, error) { return k.p.List() }

func (k kindLib) Nodes(name string) ([]string, error) {
	nodes, err := k.p.ListInternalNodes(name)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.String()
	}
	return names, nil
}

func (k kindLib) Create(name string, cfg *v1alpha4.Cluster, kubeconfig string) error {
	return k.p.Create(name,
		cluster.CreateWithV1Alpha4Config(cfg),
		// Only this file gets the cluster's context; the user's
		// kubeconfig and current context are left alone.
		cluster.CreateWithKubeconfigPath(kubeconfig),
		cluster.CreateWithWaitForReady(2*time.Minute),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false))
}

func (k kindLib) Delete(name, kubeconfig string) error { return k.p.Delete(name, kubeconfig) }

func (k kindLib) ExportKubeConfig(name, kubeconfig string) error {
	return k.p.ExportKubeConfig(name, kubeconfig, false)
}

func (k kindLib) CollectLogs(name, dir string) error { return k.p.CollectLogs(name, dir) }

// clientKube is Kube on client-go.
type clientKube struct{}

func (clientKube) client(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 15 * time.Second
	return kubernetes.NewForConfig(cfg)
}

func (k clientKube) ApplyConfigMap(ctx context.Context, kubeconfig, namespace, name string, data map[string]string) error {
	cs, err := k.client(kubeconfig)
	if err != nil {
		return err
	}
	cms := cs.CoreV1().ConfigMaps(namespace)
	cur, err := cms.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: data}, metav1.CreateOptions{})
		return err
	case err != nil:
		return err
	case maps.Equal(cur.Data, data):
		return nil
	}
	cur.Data = data
	_, err = cms.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

func (k clientKube) WaitReady(ctx context.Context, kubeconfig string, timeout time.Duration) error {
	cs, err := k.client(kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("API server not ready within %s: %w", timeout, err)
			}
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
