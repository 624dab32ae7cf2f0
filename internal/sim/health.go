package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/alt-platform/orchestration/internal/run"
)

// prober asks the components' health endpoints and the API server.
type prober struct {
	anon  *http.Client // trusts the cluster CA, presents no certificate
	admin *http.Client // authenticates as the cluster admin
}

func newProber(k pki) (*prober, error) {
	ca, err := os.ReadFile(k.crt("ca"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s holds no certificate", k.crt("ca"))
	}
	pair, err := tls.LoadX509KeyPair(k.crt("admin"), k.key("admin"))
	if err != nil {
		return nil, err
	}
	client := func(certs []tls.Certificate) *http.Client {
		return &http.Client{
			Timeout: 2 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: certs},
				DisableKeepAlives: true, // components restart; never reuse a dead connection
			},
		}
	}
	return &prober{anon: client(nil), admin: client([]tls.Certificate{pair})}, nil
}

// probe returns nil when url answers 200.
func (p *prober) probe(ctx context.Context, url string) error {
	_, err := p.get(ctx, p.anon, url)
	return err
}

func (p *prober) get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s %s", url, resp.Status, firstLines(string(body), 3))
	}
	return body, nil
}

// waitHealthy polls url until it answers 200 or d passes.
func (p *prober) waitHealthy(ctx context.Context, url string, d time.Duration, alive func() bool) error {
	deadline := time.Now().Add(d)
	for {
		err := p.probe(ctx, url)
		if err == nil {
			return nil
		}
		if !alive() {
			return fmt.Errorf("the process exited (last probe: %v)", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %s: %w", d, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// releaseNodeLeases deletes the simulated nodes' leases. A kwok process
// holds each lease it created; a new kwok manages a node (and its pods)
// only once it holds the lease, which, left alone, takes until the dead
// holder's lease expires: up to 40 s after every restart of kwok. The new
// kwok creates fresh leases at once.
func (p *prober) releaseNodeLeases(ctx context.Context, apiServer string) error {
	for i := 1; i <= NodeCount; i++ {
		url := apiServer + "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + nodeName(i)
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
		if err != nil {
			return err
		}
		resp, err := p.admin.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("delete lease of %s: %s %s", nodeName(i), resp.Status, firstLines(string(body), 3))
		}
	}
	return nil
}

// nodeList is the part of a NodeList the readiness check reads.
type nodeList struct {
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Taints []struct {
				Key string `json:"key"`
			} `json:"taints"`
		} `json:"spec"`
		Status struct {
			Conditions []struct {
				Type   string `json:"type"`
				Status string `json:"status"`
			} `json:"conditions"`
		} `json:"status"`
	} `json:"items"`
}

// notReadyNodes returns, for each simulated node that cannot take pods, why.
func notReadyNodes(body []byte) ([]string, error) {
	var l nodeList
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("node list: %w", err)
	}
	seen := map[string]string{}
	for _, n := range l.Items {
		why := "not Ready"
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" {
				why = ""
			}
		}
		for _, t := range n.Spec.Taints {
			if why == "" && (t.Key == "node.kubernetes.io/not-ready" || t.Key == "node.kubernetes.io/unreachable") {
				why = "tainted " + t.Key
			}
		}
		seen[n.Metadata.Name] = why
	}
	var bad []string
	for i := 1; i <= NodeCount; i++ {
		why, ok := seen[nodeName(i)]
		if !ok {
			why = "missing"
		}
		if why != "" {
			bad = append(bad, nodeName(i)+": "+why)
		}
	}
	slices.Sort(bad)
	return bad, nil
}

// nodesReady returns nil when every simulated node is Ready and untainted.
func (p *prober) nodesReady(ctx context.Context, apiServer string) error {
	body, err := p.get(ctx, p.admin, apiServer+"/api/v1/nodes")
	if err != nil {
		return err
	}
	bad, err := notReadyNodes(body)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, ", "))
	}
	return nil
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, " | ")
}

// tailFile returns the last n lines of a file, indented, for error
// messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return "    " + strings.Join(run.Tail(string(b), n), "\n    ")
}
