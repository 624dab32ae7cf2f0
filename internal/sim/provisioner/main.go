// Command sim-provisioner makes PersistentVolumeClaims bind in the simulated
// cluster, where no kubelet and no storage driver run.
//
// For every pending claim of a StorageClass whose provisioner is -name, it
// creates a hostPath PersistentVolume pre-bound to the claim (claimRef), on
// the node the scheduler selected when the class waits for the first
// consumer; the controller manager's PV controller then binds the pair as it
// would for any dynamically provisioned volume. Released volumes it created
// whose reclaim policy is Delete are deleted. Nothing is written to disk: no
// kubelet ever mounts these volumes.
//
// It uses only the standard library, so the sim package builds it in a
// second from its embedded source, with no module downloads.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

const (
	annSelectedNode  = "volume.kubernetes.io/selected-node"
	annProvisionedBy = "pv.kubernetes.io/provisioned-by"
)

func main() {
	var (
		server = flag.String("server", "", "API server URL")
		ca     = flag.String("ca", "", "CA certificate file of the API server")
		cert   = flag.String("cert", "", "client certificate file")
		key    = flag.String("key", "", "client key file")
		name   = flag.String("name", "sim.alt-platform.io/hostpath", "provisioner name that StorageClasses refer to")
		health = flag.String("health-address", "127.0.0.1:0", "address of the /healthz endpoint")
		resync = flag.Duration("resync", 5*time.Second, "interval of a full reconcile besides watch events")
	)
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := runProvisioner(ctx, *server, *ca, *cert, *key, *name, *health, *resync); err != nil {
		log.Fatal(err)
	}
}

func runProvisioner(ctx context.Context, server, ca, cert, key, name, health string, resync time.Duration) error {
	c, err := newClient(server, ca, cert, key)
	if err != nil {
		return err
	}
	p := &provisioner{c: c, name: name}

	srv := &http.Server{Addr: health, Handler: http.HandlerFunc(p.healthz), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("health endpoint %s: %v", health, err)
		}
	}()
	defer srv.Close()

	trigger := make(chan struct{}, 1)
	go p.watchClaims(ctx, trigger)
	log.Printf("provisioning claims of StorageClasses with provisioner %s", name)
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		p.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
		case <-tick.C:
		}
	}
}

type provisioner struct {
	c    *client
	name string

	mu      sync.Mutex
	lastOK  time.Time
	lastErr error
}

func (p *provisioner) healthz(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	ok, lastErr := p.lastOK, p.lastErr
	p.mu.Unlock()
	switch {
	case ok.IsZero():
		http.Error(w, fmt.Sprintf("not reconciled yet: %v", lastErr), http.StatusServiceUnavailable)
	case time.Since(ok) > 30*time.Second:
		http.Error(w, fmt.Sprintf("no successful reconcile since %s: %v", ok.Format(time.RFC3339), lastErr), http.StatusServiceUnavailable)
	default:
		io.WriteString(w, "ok")
	}
}

// watchClaims signals trigger on every claim event, reconnecting forever.
func (p *provisioner) watchClaims(ctx context.Context, trigger chan<- struct{}) {
	for ctx.Err() == nil {
		err := p.c.watch(ctx, "/api/v1/persistentvolumeclaims?watch=true&timeoutSeconds=300", func() {
			select {
			case trigger <- struct{}{}:
			default:
			}
		})
		if err != nil && ctx.Err() == nil {
			log.Printf("watch claims: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

type meta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace,omitempty"`
	UID               string            `json:"uid,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	DeletionTimestamp *string           `json:"deletionTimestamp,omitempty"`
}

type storageClass struct {
	Metadata          meta   `json:"metadata"`
	Provisioner       string `json:"provisioner"`
	ReclaimPolicy     string `json:"reclaimPolicy"`
	VolumeBindingMode string `json:"volumeBindingMode"`
}

type claim struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		StorageClassName *string  `json:"storageClassName"`
		VolumeName       string   `json:"volumeName"`
		AccessModes      []string `json:"accessModes"`
		VolumeMode       string   `json:"volumeMode"`
		Resources        struct {
			Requests map[string]string `json:"requests"`
		} `json:"resources"`
	} `json:"spec"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

type volume struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		PersistentVolumeReclaimPolicy string `json:"persistentVolumeReclaimPolicy"`
	} `json:"spec"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

type list[T any] struct {
	Items []T `json:"items"`
}

func (p *provisioner) reconcile(ctx context.Context) {
	err := p.reconcileOnce(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	if err == nil {
		p.lastOK = time.Now()
	} else if ctx.Err() == nil {
		log.Printf("reconcile: %v", err)
	}
}

func (p *provisioner) reconcileOnce(ctx context.Context) error {
	var classes list[storageClass]
	if err := p.c.get(ctx, "/apis/storage.k8s.io/v1/storageclasses", &classes); err != nil {
		return err
	}
	ours := map[string]storageClass{}
	for _, sc := range classes.Items {
		if sc.Provisioner == p.name {
			ours[sc.Metadata.Name] = sc
		}
	}
	var claims list[claim]
	if err := p.c.get(ctx, "/api/v1/persistentvolumeclaims", &claims); err != nil {
		return err
	}
	var errs []error
	for _, cl := range claims.Items {
		if cl.Status.Phase != "Pending" || cl.Spec.VolumeName != "" || cl.Metadata.DeletionTimestamp != nil || cl.Spec.StorageClassName == nil {
			continue
		}
		sc, ok := ours[*cl.Spec.StorageClassName]
		if !ok {
			continue
		}
		node := cl.Metadata.Annotations[annSelectedNode]
		if sc.VolumeBindingMode == "WaitForFirstConsumer" && node == "" {
			continue // the scheduler has not picked a node yet
		}
		pv := volumeFor(cl, sc, node, p.name)
		code, err := p.c.do(ctx, http.MethodPost, "/api/v1/persistentvolumes", pv, nil)
		switch {
		case code == http.StatusConflict:
			// created by an earlier pass; the PV controller binds it
		case err != nil:
			errs = append(errs, fmt.Errorf("create volume for claim %s/%s: %w", cl.Metadata.Namespace, cl.Metadata.Name, err))
		default:
			log.Printf("created %s for claim %s/%s (class %s, node %q)", pv["metadata"].(map[string]any)["name"], cl.Metadata.Namespace, cl.Metadata.Name, sc.Metadata.Name, node)
		}
	}

	var volumes list[volume]
	if err := p.c.get(ctx, "/api/v1/persistentvolumes", &volumes); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, v := range volumes.Items {
		if v.Metadata.Annotations[annProvisionedBy] != p.name || v.Status.Phase != "Released" ||
			v.Spec.PersistentVolumeReclaimPolicy != "Delete" || v.Metadata.DeletionTimestamp != nil {
			continue
		}
		code, err := p.c.do(ctx, http.MethodDelete, "/api/v1/persistentvolumes/"+url.PathEscape(v.Metadata.Name), nil, nil)
		if err != nil && code != http.StatusNotFound {
			errs = append(errs, fmt.Errorf("delete released volume %s: %w", v.Metadata.Name, err))
			continue
		}
		log.Printf("deleted released volume %s", v.Metadata.Name)
	}
	return errors.Join(errs...)
}

// volumeFor is the PersistentVolume that satisfies the claim.
func volumeFor(cl claim, sc storageClass, node, provisioner string) map[string]any {
	reclaim := sc.ReclaimPolicy
	if reclaim == "" {
		reclaim = "Delete"
	}
	name := "pvc-" + cl.Metadata.UID
	spec := map[string]any{
		"capacity":                      map[string]any{"storage": cl.Spec.Resources.Requests["storage"]},
		"accessModes":                   cl.Spec.AccessModes,
		"persistentVolumeReclaimPolicy": reclaim,
		"storageClassName":              sc.Metadata.Name,
		"claimRef": map[string]any{
			"apiVersion": "v1", "kind": "PersistentVolumeClaim",
			"namespace": cl.Metadata.Namespace, "name": cl.Metadata.Name, "uid": cl.Metadata.UID,
		},
		"hostPath": map[string]any{"path": "/var/lib/alt-sim/volumes/" + name, "type": "DirectoryOrCreate"},
	}
	if cl.Spec.VolumeMode != "" {
		spec["volumeMode"] = cl.Spec.VolumeMode
	}
	if node != "" {
		spec["nodeAffinity"] = map[string]any{"required": map[string]any{"nodeSelectorTerms": []any{
			map[string]any{"matchExpressions": []any{
				map[string]any{"key": "kubernetes.io/hostname", "operator": "In", "values": []string{node}},
			}},
		}}}
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "PersistentVolume",
		"metadata": map[string]any{
			"name":        name,
			"annotations": map[string]string{annProvisionedBy: provisioner},
		},
		"spec": spec,
	}
}

// client is a minimal API server client over client-certificate TLS.
type client struct {
	base string
	http *http.Client
}

func newClient(server, ca, cert, key string) (*client, error) {
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", ca)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}
	return &client{base: server, http: &http.Client{Transport: tr}}, nil
}

func (c *client) get(ctx context.Context, path string, out any) error {
	_, err := c.do(ctx, http.MethodGet, path, nil, out)
	return err
}

// do sends body as JSON and decodes a 2xx answer into out; it returns the
// status code and an error for any other answer.
func (c *client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out != nil {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

// watch calls event for each event of a watch stream until it ends.
func (c *client) watch(ctx context.Context, path string, event func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg))
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev struct {
			Type string `json:"type"`
		}
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		event()
	}
}
