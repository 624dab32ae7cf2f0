package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
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
		if r, err := decodeRecord(s); err == nil {
			recs[layer] = r
		}
	}
	return recs, nil
}

// SaveRecord stores a layer's record; called only after verification.
func (k *Kube) SaveRecord(ctx context.Context, layer string, r Record) error {
	return k.updateState(ctx, func(data map[string]string) { data[layer] = r.encode() })
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

// Lock takes the cluster's deploy lock (a Lease) for this run and renews it
// until the returned release function is called. A lock held by a live run
// is refused with a message that names that run; a lock whose holder
// stopped renewing it (a killed run) is taken over.
func (k *Kube) Lock(ctx context.Context, holder string) (release func(), err error) {
	leases := k.Client.CoordinationV1().Leases(stateNamespace)
	now := metav1.NewMicroTime(time.Now())
	secs := int32(lockDuration / time.Second)
	want := &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lockLease, Namespace: stateNamespace},
		Spec:       coordv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}
	_, err = leases.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := leases.Get(ctx, lockLease, metav1.GetOptions{})
		if gerr != nil {
			return nil, gerr
		}
		if heldBy(cur) != "" && !deadHere(heldBy(cur)) {
			return nil, fmt.Errorf("another run is deploying to this cluster: %s (lock: Lease %s/%s, renewed %s ago); wait for it to finish, or if it is gone the lock expires %s after its last renewal",
				heldBy(cur), stateNamespace, lockLease, time.Since(cur.Spec.RenewTime.Time).Round(time.Second), lockDuration)
		}
		cur.Spec = want.Spec
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return nil, fmt.Errorf("another run took the deploy lock (Lease %s/%s) at the same moment; try again", stateNamespace, lockLease)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("taking the deploy lock (Lease %s/%s): %w", stateNamespace, lockLease, err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lockDuration / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if cur, err := leases.Get(context.Background(), lockLease, metav1.GetOptions{}); err == nil && cur.Spec.HolderIdentity != nil && *cur.Spec.HolderIdentity == holder {
					n := metav1.NewMicroTime(time.Now())
					cur.Spec.RenewTime = &n
					leases.Update(context.Background(), cur, metav1.UpdateOptions{})
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if cur, err := leases.Get(c, lockLease, metav1.GetOptions{}); err == nil && cur.Spec.HolderIdentity != nil && *cur.Spec.HolderIdentity == holder {
			leases.Delete(c, lockLease, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &cur.ResourceVersion}})
		}
	}, nil
}

// heldBy names the live holder of a lease, or "" when it has expired.
func heldBy(l *coordv1.Lease) string {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil {
		return ""
	}
	d := lockDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	if time.Since(l.Spec.RenewTime.Time) > d {
		return ""
	}
	return *l.Spec.HolderIdentity
}

var holderRE = regexp.MustCompile(`^[^@]*@(\S+) pid (\d+) `)

// deadHere reports whether a lock holder is a run on this machine whose
// process is gone (killed, or stopped with its API server down so it could
// not release the lock): its lock need not be waited out.
func deadHere(holder string) bool {
	m := holderRE.FindStringSubmatch(holder)
	host, _ := os.Hostname()
	if m == nil || m[1] != host {
		return false
	}
	pid, err := strconv.Atoi(m[2])
	return err == nil && pid > 0 && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// Holder describes this run for the lock: who, where, what, since when.
func Holder(what string) string {
	host, _ := os.Hostname()
	user := os.Getenv("USER")
	return fmt.Sprintf("%s@%s pid %d running %q since %s", user, host, os.Getpid(), what, time.Now().UTC().Format(time.RFC3339))
}

// CommandLine is what the user asked for, for the lock's holder text.
func CommandLine() string { return strings.Join(os.Args[1:], " ") }
