package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// stateNamespace holds the engine's own objects: the deploy lock and the
// record of each layer's last verified deploy. It exists in every cluster.
const (
	stateNamespace = "kube-system"
	stateConfigMap = "alt-platform-state"
	lockLease      = "alt-platform-deploy"
	lockDuration   = 60 * time.Second
)

// Kube is a client for one cluster.
type Kube struct {
	Config  *rest.Config
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	Mapper  *restmapper.DeferredDiscoveryRESTMapper

	// firstConsumer keeps, per StorageClass, whether it binds claims
	// WaitForFirstConsumer (bindsOnFirstConsumer).
	firstConsumer sync.Map
}

// Connect builds clients from a kubeconfig file and checks that the API
// server answers within a few seconds.
func Connect(ctx context.Context, kubeconfig, kubeContext string) (*Kube, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	// A health check reads every object of a layer; the default client
	// rate limit (5/s) would make that take seconds.
	cfg.QPS, cfg.Burst = 300, 600
	cfg.Timeout = 30 * time.Second
	k := &Kube{Config: cfg}
	if k.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if k.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	k.Mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := k.Client.CoreV1().Namespaces().Get(pctx, stateNamespace, metav1.GetOptions{}); err != nil {
		return nil, fmt.Errorf("the API server at %s does not answer (kubeconfig %s): %w", cfg.Host, kubeconfig, err)
	}
	return k, nil
}

// Records reads every layer's record of its last verified deploy.
func (k *Kube) Records(ctx context.Context) (map[string]Record, error) {
	cm, err := k.Client.CoreV1().ConfigMaps(stateNamespace).Get(ctx, stateConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string]Record{}, nil
	}
	if err != nil {
		return nil, err
	}
	recs := map[string]Record{}
	for layer, s := range cm.Data {
		if strings.HasSuffix(layer, historySuffix) {
			continue
		}
		if r, err := decodeRecord(s); err == nil {
			recs[layer] = r
		}
	}
	return recs, nil
}

// SaveRecord stores a layer's record, called only after verification, and
// puts it first in the layer's history of verified deploys.
func (k *Kube) SaveRecord(ctx context.Context, layer string, r Record) error {
	return k.updateState(ctx, func(data map[string]string) {
		data[layer] = r.encode()
		var hist []Record
		json.Unmarshal([]byte(data[historyKey(layer)]), &hist)
		hist = append([]Record{r}, hist...)
		if len(hist) > historyMax {
			hist = hist[:historyMax]
		}
		b, _ := json.Marshal(hist)
		data[historyKey(layer)] = string(b)
	})
}

// History is a layer's verified deploys, newest first.
func (k *Kube) History(ctx context.Context, layer string) ([]Record, error) {
	cm, err := k.Client.CoreV1().ConfigMaps(stateNamespace).Get(ctx, stateConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var hist []Record
	if s := cm.Data[historyKey(layer)]; s != "" {
		if err := json.Unmarshal([]byte(s), &hist); err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s, key %s: %w", stateNamespace, stateConfigMap, historyKey(layer), err)
		}
	}
	return hist, nil
}

// ForgetHistory drops a layer's verified deploys (its releases are gone).
func (k *Kube) ForgetHistory(ctx context.Context, layer string) error {
	return k.updateState(ctx, func(data map[string]string) { delete(data, historyKey(layer)) })
}

// ForgetRecord drops a layer's record, so the next run deploys it.
func (k *Kube) ForgetRecord(ctx context.Context, layer string) error {
	return k.updateState(ctx, func(data map[string]string) { delete(data, layer) })
}

func (k *Kube) updateState(ctx context.Context, change func(map[string]string)) error {
	cms := k.Client.CoreV1().ConfigMaps(stateNamespace)
	for range 5 {
		cm, err := cms.Get(ctx, stateConfigMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: stateConfigMap, Namespace: stateNamespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "alt-platform"}}, Data: map[string]string{}}
			change(cm.Data)
			if _, err = cms.Create(ctx, cm, metav1.CreateOptions{}); err == nil || !apierrors.IsAlreadyExists(err) {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		change(cm.Data)
		if _, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err == nil || !apierrors.IsConflict(err) {
			return err
		}
	}
	return errors.New("state ConfigMap kept changing under us; try again")
}

// CommandLine is what the user asked for, for the lock's holder text.
func CommandLine() string { return strings.Join(os.Args[1:], " ") }
