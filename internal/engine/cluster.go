package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alt-platform/orchestration/internal/config"
	"github.com/alt-platform/orchestration/internal/kind"
	"github.com/alt-platform/orchestration/internal/ui"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Cluster is where a run deploys.
type Cluster interface {
	// Name is the ALT_CLUSTER kind: kind, sim or context.
	Name() string
	// Ensure makes the cluster ready (creating or starting it where this
	// repository owns it) and returns the path of a kubeconfig whose
	// current context is that cluster.
	Ensure(ctx context.Context) (kubeconfig string, err error)
	// Kubeconfig is that path without ensuring anything; "" when the
	// cluster does not exist yet.
	Kubeconfig() string
}

func newCluster(e *Engine) (Cluster, error) {
	switch e.Cfg.Cluster {
	case config.ClusterSim:
		e.Env["ALT_CERT_MANAGER"] = "off"
		if e.Cfg.CertManager == "on" {
			return nil, fmt.Errorf("ALT_CERT_MANAGER=on: a sim cluster cannot serve cert-manager's webhook (no container runs); use auto or off")
		}
		return newSimCluster(e), nil
	case config.ClusterContext:
		if e.Cfg.CertManager == "off" {
			e.Env["ALT_CERT_MANAGER"] = "off"
		}
		return &contextCluster{name: e.Cfg.KubeContext}, nil
	case config.ClusterKind:
		if e.Cfg.CertManager == "off" {
			e.Env["ALT_CERT_MANAGER"] = "off"
		}
		// Its pre-flight checks the sources of the run's layers, as build does.
		return kind.FromConfig(e.Repo, e.Cfg, e.Runner, func() error { return e.CheckSources(e.thisRun()) }), nil
	default:
		return nil, fmt.Errorf("ALT_CLUSTER=%q: unknown cluster kind", e.Cfg.Cluster)
	}
}

// Optional abilities of a Cluster, which the engine checks for: a
// pre-flight run before anything slow (prepare), the registry images are
// pushed to (build), logs exported when a layer fails (Deploy).
type (
	preflighter interface {
		Preflight(ctx context.Context) error
	}
	imageRepoer interface{ ImageRepo() string }
	// offliner says whether the cluster reaches no image registry (kind
	// with the images built here).
	offliner     interface{ Offline(context.Context) bool }
	logCollector interface {
		CollectLogs(dir string) (string, error)
	}
)

var _ interface {
	Cluster
	preflighter
	imageRepoer
	logCollector
	offliner
} = (*kind.Provider)(nil)

// decideCertManager settles ALT_CERT_MANAGER before anything reads the
// layers' inputs: off on an offline cluster (neither the jetstack chart
// repository nor cert-manager's images can be reached), on otherwise
// unless set off. The layers always see on or off: 06-application passes
// it to nginx-external (TLS at the entry), and 01, 05 and 06 have a
// cert-manager-off profile activated by it. A deploy says loudly what was
// switched off and what that leaves out.
func (e *Engine) decideCertManager(ctx context.Context, say bool) {
	why := "as set"
	switch {
	case e.Cfg.Cluster == config.ClusterSim:
		e.Env["ALT_CERT_MANAGER"] = "off"
		why = "a sim cluster serves no webhook and the chart repository is unreachable offline"
	case e.Cfg.CertManager == "auto" && isOffline(ctx, e.Cluster):
		e.Env["ALT_CERT_MANAGER"] = "off"
		why = "from auto: the kind cluster is offline, neither the jetstack chart repository nor cert-manager's images can be reached"
	}
	if e.Env["ALT_CERT_MANAGER"] != "off" {
		e.Env["ALT_CERT_MANAGER"] = "on"
		return
	}
	if say {
		ui.Warn("cert-manager and the PKI (ClusterIssuer alt-ca) are switched off (ALT_CERT_MANAGER=off, %s); nothing in this run gets a certificate from them. Left out with cert-manager: %s",
			why, strings.Join(leftOutWithoutCertManager(e.Cfg.Profile), ", "))
	}
}

// leftOutWithoutCertManager is what a run of the profile does not get
// when cert-manager is off: the layers' cert-manager-off profiles and
// nginx-external's tls.certManager (skaffold/05-auth-platform,
// skaffold/06-application).
func leftOutWithoutCertManager(profile string) []string {
	out := []string{"HTTPS at nginx-external (no Certificate, no TLS server, no https port: plain HTTP only)"}
	if profile == "dev" {
		return append(out, "Kratos' https URL (it is http://localhost, and so is alt-frontend's build)")
	}
	return append(out, "nothing else: Kratos keeps the site's https URL, so TLS must end in front of nginx-external")
}

func isOffline(ctx context.Context, c Cluster) bool {
	o, ok := c.(offliner)
	return ok && o.Offline(ctx)
}

// contextCluster is an existing cluster reached through a kube context. The
// engine never creates or deletes it; it writes a kubeconfig holding only
// that context (its credentials flattened into it), so hooks and tools
// cannot reach another cluster. The file lives in a private directory of
// this run, made on first use and removed by Close: the credentials are
// not left behind in the repository or anywhere else.
type contextCluster struct {
	name string
	dir  string // the run's private directory; "" until first written
}

func (c *contextCluster) Name() string { return config.ClusterContext }

// Kubeconfig writes the context's kubeconfig (a file, no cluster call) and
// returns its path; "" when the context cannot be read.
func (c *contextCluster) Kubeconfig() string {
	path, err := c.write()
	if err != nil {
		return ""
	}
	return path
}

func (c *contextCluster) Ensure(ctx context.Context) (string, error) { return c.write() }

func (c *contextCluster) write() (string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	raw, err := rules.Load()
	if err != nil {
		return "", fmt.Errorf("reading kubeconfig (KUBECONFIG or ~/.kube/config): %w", err)
	}
	if _, ok := raw.Contexts[c.name]; !ok {
		return "", fmt.Errorf("ALT_KUBE_CONTEXT=%q: no such context in your kubeconfig (%s)", c.name, rules.GetLoadingPrecedence())
	}
	raw.CurrentContext = c.name
	if err := clientcmdapi.MinifyConfig(raw); err != nil {
		return "", err
	}
	if err := clientcmdapi.FlattenConfig(raw); err != nil {
		return "", err
	}
	if c.dir == "" {
		// MkdirTemp makes it 0700: readable by this user only.
		if c.dir, err = os.MkdirTemp("", "alt-platform-context-"); err != nil {
			return "", err
		}
	}
	path := filepath.Join(c.dir, fileSafe(c.name)+".kubeconfig")
	return path, clientcmd.WriteToFile(*raw, path) // written 0600
}

// Close removes the run's private directory and the kubeconfig in it.
func (c *contextCluster) Close() error {
	if c.dir == "" {
		return nil
	}
	err := os.RemoveAll(c.dir)
	c.dir = ""
	return err
}

// fileSafe makes a context name (an EKS ARN holds ':' and '/') one file
// name: every character but letters, digits, '.', '-' and '_' becomes '_'.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}
