// Package config owns every setting of this repository and the environment
// variable behind it. Nothing else reads ALT_* variables.
package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Profiles every layer defines, in promotion order.
var Profiles = []string{"dev", "staging", "prod"}

// Cluster kinds.
const (
	ClusterKind    = "kind"
	ClusterSim     = "sim"
	ClusterContext = "context"
)

// Clusters are the accepted values of ALT_CLUSTER.
var Clusters = []string{ClusterKind, ClusterSim, ClusterContext}

// Setting is one effective value and where it came from.
type Setting struct {
	Env    string // the variable, e.g. ALT_PROFILE
	Value  string
	Source string // "default", "environment", or what was detected
	Doc    string
}

// Config is the effective configuration of one run.
type Config struct {
	Profile     string
	Cluster     string
	KubeContext string
	Src         string
	Registry    string
	ToolsDir    string
	// LayerTimeout is the budget of one layer: deploy and verification.
	LayerTimeout time.Duration
	// ForceContext names a non-local kube context that dev may deploy to.
	ForceContext string
	// CertManager is auto, on or off: whether 01-foundation deploys
	// cert-manager and the PKI that needs it.
	CertManager string
	// KindName is the name of the local kind cluster (kube context
	// kind-<name>, registry container <name>-registry).
	KindName string
	// KindRegistryPort is the host port (on 127.0.0.1) of the kind
	// cluster's local image registry.
	KindRegistryPort int
	// KindHTTPPort and KindHTTPSPort are the host ports (on 127.0.0.1)
	// mapped to nginx-external's node ports (http and https).
	KindHTTPPort, KindHTTPSPort int
	// KindRecreate allows deleting and recreating a kind cluster (or its
	// registry) whose configuration has drifted.
	KindRecreate bool
	// KindOffline is auto, on or off: whether the kind cluster uses the
	// images built on this machine (kind:image) instead of the pinned
	// public ones; auto decides by whether an image registry answers.
	KindOffline string
	// StandinCrash are the releases whose stand-in kind:standins builds to
	// crash (ALT_STANDIN_CRASH, comma-separated), for the diagnosis test.
	StandinCrash []string
	// OtherProfile allows deploying ALT_PROFILE to a cluster whose first
	// deploy bound it to another profile (and binds it to ALT_PROFILE).
	OtherProfile bool
	// Release is the release file (ALT_RELEASE): staging writes the image
	// references it verified there, prod deploys those; relative to the
	// repository unless absolute.
	Release string
	// TestSimProfiles lets staging and prod deploy to a sim cluster: a
	// switch for tests only, announced loudly by every run that uses it.
	TestSimProfiles bool
	// Settings lists every setting in documentation order, for config:show.
	Settings []Setting
}

// Env looks a variable up; tests pass a map, targets pass os.LookupEnv.
type Env func(string) (string, bool)

// Docker reports whether a Docker daemon answers; replaced in tests.
type Docker func() bool

// Load reads every setting. All problems are reported in one error.
func Load(env Env, docker Docker) (*Config, error) {
	c := &Config{}
	var errs []error
	get := func(name, def, doc string) Setting {
		s := Setting{Env: name, Value: def, Source: "default", Doc: doc}
		if v, ok := env(name); ok && v != "" {
			s.Value, s.Source = v, "environment"
		}
		return s
	}

	profile := get("ALT_PROFILE", "dev", "profile of every layer: "+strings.Join(Profiles, "|"))
	if !slices.Contains(Profiles, profile.Value) {
		errs = append(errs, fmt.Errorf("ALT_PROFILE=%q: unknown profile; expected one of %s", profile.Value, strings.Join(Profiles, ", ")))
	}

	cluster := get("ALT_CLUSTER", "", "where to deploy: kind (local kind cluster), sim (simulated nodes, no Docker), context (an existing kube context)")
	if cluster.Value == "" {
		if docker() {
			cluster.Value, cluster.Source = ClusterKind, "detected: a Docker daemon answers"
		} else {
			cluster.Value, cluster.Source = ClusterSim, "detected: no Docker daemon"
		}
	}
	if !slices.Contains(Clusters, cluster.Value) {
		errs = append(errs, fmt.Errorf("ALT_CLUSTER=%q: unknown cluster kind; expected one of %s", cluster.Value, strings.Join(Clusters, ", ")))
	}

	kctx := get("ALT_KUBE_CONTEXT", "", "kube context to deploy to when ALT_CLUSTER=context")
	if cluster.Value == ClusterContext && kctx.Value == "" {
		errs = append(errs, errors.New("ALT_KUBE_CONTEXT: required when ALT_CLUSTER=context; set it to a context of your kubeconfig"))
	}
	if kctx.Value != "" && cluster.Value != ClusterContext {
		errs = append(errs, fmt.Errorf("ALT_KUBE_CONTEXT=%q: only used with ALT_CLUSTER=context (ALT_CLUSTER is %q)", kctx.Value, cluster.Value))
	}

	src := get("ALT_SRC", "../alt", "the Alt source checkout holding the build contexts")
	if abs, err := filepath.Abs(src.Value); err == nil {
		src.Value = abs
	}

	registry := get("ALT_REGISTRY", "", "image registry that staging pushes to (prod deploys the references of the release file and builds nothing)")
	knownProfile := slices.Contains(Profiles, profile.Value)
	if profile.Value == "staging" && registry.Value == "" {
		errs = append(errs, fmt.Errorf("ALT_REGISTRY: required for ALT_PROFILE=%s (images are pushed there)", profile.Value))
	}

	release := get("ALT_RELEASE", "releases/staging.json", "the release file: a staging run writes the image references it verified there (pinned by digest); prod deploys those and builds nothing")

	tools := get("ALT_TOOLS_DIR", defaultToolsDir(env), "cache of the pinned tools, one folder per tool and version")
	if !filepath.IsAbs(tools.Value) {
		errs = append(errs, fmt.Errorf("ALT_TOOLS_DIR=%q: must be an absolute path", tools.Value))
	}

	timeout := get("ALT_LAYER_TIMEOUT", "5m", "time budget of one layer (deploy and verification), a Go duration")
	if d, err := time.ParseDuration(timeout.Value); err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("ALT_LAYER_TIMEOUT=%q: expected a positive duration such as 5m or 90s", timeout.Value))
	} else {
		c.LayerTimeout = d
	}

	force := get("ALT_FORCE_CONTEXT", "", "the non-local kube context that the dev profile may deploy to (must equal ALT_KUBE_CONTEXT)")
	certManager := get("ALT_CERT_MANAGER", "auto", "cert-manager and the PKI in 01-foundation, and with them TLS at the entry (nginx-external HTTPS, dev's https URLs): on, off, or auto (off on sim or on an offline kind cluster)")
	if !slices.Contains([]string{"auto", "on", "off"}, certManager.Value) {
		errs = append(errs, fmt.Errorf("ALT_CERT_MANAGER=%q: expected auto, on or off", certManager.Value))
	}
	if certManager.Value == "on" && cluster.Value == ClusterSim {
		errs = append(errs, fmt.Errorf("ALT_CERT_MANAGER=on: a sim cluster cannot serve cert-manager's webhook (no container runs); use auto or off"))
	}
	kindName := get("ALT_KIND_NAME", "alt", "name of the local kind cluster: kube context kind-<name>, registry container <name>-registry")
	if !kindNameRE.MatchString(kindName.Value) || len(kindName.Value) > 40 {
		errs = append(errs, fmt.Errorf("ALT_KIND_NAME=%q: expected lower-case letters, digits, '.' and '-' (at most 40)", kindName.Value))
	}
	kindPort := get("ALT_KIND_REGISTRY_PORT", "5001", "host port (127.0.0.1) of the kind cluster's local image registry; dev images are pushed to localhost:<port>")
	if p, err := strconv.Atoi(kindPort.Value); err != nil || p < 1024 || p > 65535 {
		errs = append(errs, fmt.Errorf("ALT_KIND_REGISTRY_PORT=%q: expected a port number from 1024 to 65535", kindPort.Value))
	} else {
		c.KindRegistryPort = p
	}
	port := func(name, def, help string) int {
		st := get(name, def, help)
		p, err := strconv.Atoi(st.Value)
		if err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s=%q: expected a port number from 1 to 65535", name, st.Value))
			return 0
		}
		return p
	}
	c.KindHTTPPort = port("ALT_KIND_HTTP_PORT", "80", "host port (127.0.0.1) of the kind cluster's entry, nginx-external over http (http://localhost:<port>/)")
	c.KindHTTPSPort = port("ALT_KIND_HTTPS_PORT", "443", "host port (127.0.0.1) mapped to nginx-external's https node port")
	if ports := []int{c.KindHTTPPort, c.KindHTTPSPort, c.KindRegistryPort}; ports[0] != 0 && ports[1] != 0 && ports[2] != 0 &&
		(ports[0] == ports[1] || ports[0] == ports[2] || ports[1] == ports[2]) {
		errs = append(errs, fmt.Errorf("ALT_KIND_HTTP_PORT=%d, ALT_KIND_HTTPS_PORT=%d, ALT_KIND_REGISTRY_PORT=%d: the kind cluster's host ports must differ", ports[0], ports[1], ports[2]))
	}
	// flag is a yes/no setting: 1 or true, else 0, false or unset.
	flag := func(name, help string) (Setting, bool) {
		st := get(name, "", help)
		switch st.Value {
		case "", "0", "false":
			return st, false
		case "1", "true":
			return st, true
		default:
			errs = append(errs, fmt.Errorf("%s=%q: expected 1 or 0", name, st.Value))
			return st, false
		}
	}
	kindRecreate, kindRecreateOn := flag("ALT_KIND_RECREATE", "1: delete and recreate a kind cluster (or its registry) whose configuration has drifted; unset: report the drift and stop")
	kindOffline := get("ALT_KIND_OFFLINE", "auto", "the kind cluster's images: 1 (the ones kind:image builds here, no registry needed), 0 (the pinned public images), auto (1 when Docker Hub does not answer)")
	switch kindOffline.Value {
	case "auto":
		c.KindOffline = "auto"
	case "1", "true":
		c.KindOffline = "on"
	case "0", "false":
		c.KindOffline = "off"
	default:
		errs = append(errs, fmt.Errorf("ALT_KIND_OFFLINE=%q: expected 1, 0 or auto", kindOffline.Value))
	}
	otherProfile, otherProfileOn := flag("ALT_OTHER_PROFILE", "1: deploy ALT_PROFILE to a cluster whose first deploy bound it to another profile, and bind it to ALT_PROFILE; unset: refuse, naming both")
	testSim, testSimOn := flag("ALT_TEST_SIM_PROFILES", "tests only: 1 lets staging and prod deploy to a sim cluster (the profile guard is off for sim, said in a banner); never for a real deploy")
	if testSimOn && cluster.Value != ClusterSim {
		errs = append(errs, fmt.Errorf("ALT_TEST_SIM_PROFILES=1: only with ALT_CLUSTER=sim (ALT_CLUSTER is %q); unset it", cluster.Value))
	}
	standinCrash := get("ALT_STANDIN_CRASH", "", "releases (comma-separated) whose stand-in kind:standins builds to crash: its health answers 503, then it exits 3")
	for _, r := range strings.Split(standinCrash.Value, ",") {
		if r = strings.TrimSpace(r); r != "" {
			c.StandinCrash = append(c.StandinCrash, r)
		}
	}
	if cluster.Value == ClusterKind && profile.Value == "dev" && registry.Value != "" {
		errs = append(errs, fmt.Errorf("ALT_REGISTRY=%q: not used with ALT_CLUSTER=kind and the dev profile (images go to the cluster's local registry, localhost:%s); unset it", registry.Value, kindPort.Value))
	}
	if knownProfile && slices.Contains(Clusters, cluster.Value) && !(testSimOn && cluster.Value == ClusterSim) {
		// Only a valid profile on a valid cluster kind can be the wrong match.
		errs = append(errs, targetErrors(profile.Value, cluster.Value)...)
	}

	c.Profile, c.Cluster, c.KubeContext = profile.Value, cluster.Value, kctx.Value
	c.Src, c.Registry, c.ToolsDir, c.Release = src.Value, registry.Value, tools.Value, release.Value
	c.ForceContext, c.CertManager = force.Value, certManager.Value
	c.KindName = kindName.Value
	c.KindRecreate, c.OtherProfile, c.TestSimProfiles = kindRecreateOn, otherProfileOn, testSimOn
	c.Settings = []Setting{profile, cluster, kctx, src, registry, release, tools, timeout, force, certManager, kindName, kindPort, kindRecreate, kindOffline, otherProfile, standinCrash, testSim}
	if len(errs) > 0 {
		return c, fmt.Errorf("bad configuration:\n  %w", joinIndented(errs))
	}
	return c, nil
}

// targetErrors refuses staging and prod on a kind or sim cluster. Whether
// the cluster behind a kube context is a kind or sim cluster is told by
// what it is (its API server and nodes), which the engine checks once it
// has connected; a context's name proves nothing.
func targetErrors(profile, cluster string) []error {
	if profile != "dev" && (cluster == ClusterKind || cluster == ClusterSim) {
		return []error{fmt.Errorf("ALT_PROFILE=%s refuses ALT_CLUSTER=%s: staging and prod deploy only to a real cluster (ALT_CLUSTER=context with ALT_KUBE_CONTEXT)", profile, cluster)}
	}
	return nil
}

// kindNameRE is what kind accepts as a cluster name.
var kindNameRE = regexp.MustCompile(`^[a-z0-9.-]+$`)

// FromEnvironment loads the configuration of this process.
func FromEnvironment() (*Config, error) { return Load(os.LookupEnv, DockerAnswers) }

func defaultToolsDir(env Env) string {
	if v, ok := env("XDG_CACHE_HOME"); ok && v != "" {
		return filepath.Join(v, "alt-platform", "tools")
	}
	if home, ok := env("HOME"); ok && home != "" {
		return filepath.Join(home, ".cache", "alt-platform", "tools")
	}
	return filepath.Join(os.TempDir(), "alt-platform", "tools")
}

// DockerAnswers pings the Docker daemon (DOCKER_HOST or the default socket)
// and reports whether it answered within a second.
func DockerAnswers() bool {
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		if !strings.HasPrefix(h, "unix://") {
			return false // remote daemons are not used for local clusters
		}
		sock = strings.TrimPrefix(h, "unix://")
	}
	client := &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
	}
	resp, err := client.Get("http://docker/_ping")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// PublicRegistry is where the kind cluster's pinned public images come
// from (Docker Hub).
const PublicRegistry = "registry-1.docker.io"

// ImageRegistryAnswers reports whether PublicRegistry answers HTTPS
// within three seconds (any HTTP answer counts: its /v2/ asks for a token).
// It honours HTTPS_PROXY.
func ImageRegistryAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+PublicRegistry+"/v2/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// joinIndented joins errors one per line, indented under a heading.
func joinIndented(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}
