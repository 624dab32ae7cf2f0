package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/alt-platform/orchestration/internal/config"
)

type offlineKind struct {
	fakeCluster
	offline bool
}

func (offlineKind) Name() string                   { return config.ClusterKind }
func (c offlineKind) Offline(context.Context) bool { return c.offline }

// ALT_CERT_MANAGER=auto is off on an offline kind cluster (no chart
// repository, no image registry), on otherwise; an explicit value is kept.
// The layers always see on or off (06-application passes it to
// nginx-external as tls.certManager).
func TestCertManagerAutoIsOffOnAnOfflineKindCluster(t *testing.T) {
	for _, c := range []struct {
		setting string
		offline bool
		want    string
	}{
		{"auto", true, "off"},
		{"auto", false, "on"},
		{"on", true, "on"},
	} {
		e := &Engine{Cfg: &config.Config{Cluster: config.ClusterKind, CertManager: c.setting},
			Env: map[string]string{}, Cluster: offlineKind{offline: c.offline}}
		e.decideCertManager(context.Background(), false)
		if got := e.Env["ALT_CERT_MANAGER"]; got != c.want {
			t.Errorf("ALT_CERT_MANAGER=%s, offline %v: the layers see %q, want %q", c.setting, c.offline, got, c.want)
		}
	}
}

// With cert-manager off, the run names what it leaves out of TLS at the
// entry, per profile; with it on, it says nothing.
func TestCertManagerOffSaysWhatItLeavesOut(t *testing.T) {
	for _, c := range []struct {
		profile, setting string
		offline          bool
		want, not        []string
	}{
		{"dev", "auto", true, []string{"from auto: the kind cluster is offline", "Left out with cert-manager: HTTPS at nginx-external", "Kratos' https URL"}, nil},
		{"staging", "off", false, []string{"ALT_CERT_MANAGER=off, as set", "HTTPS at nginx-external", "TLS must end in front of nginx-external"}, []string{"Kratos' https URL"}},
		{"dev", "auto", false, nil, []string{"switched off", "Left out"}},
	} {
		out := quiet(t)
		e := &Engine{Cfg: &config.Config{Cluster: config.ClusterKind, CertManager: c.setting, Profile: c.profile},
			Env: map[string]string{}, Cluster: offlineKind{offline: c.offline}}
		if c.setting == "off" {
			e.Env["ALT_CERT_MANAGER"] = "off" // as newCluster sets it
		}
		e.decideCertManager(context.Background(), true)
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s, ALT_CERT_MANAGER=%s, offline %v: the run does not say %q:\n%s", c.profile, c.setting, c.offline, w, out)
			}
		}
		for _, w := range c.not {
			if strings.Contains(out.String(), w) {
				t.Errorf("%s, ALT_CERT_MANAGER=%s, offline %v: the run says %q:\n%s", c.profile, c.setting, c.offline, w, out)
			}
		}
	}
}

// On kind, the platform is announced over HTTPS where cert-manager is
// deployed (nginx-external's TLS server), over HTTP where it is not.
func TestEntryURLFollowsCertManager(t *testing.T) {
	for _, c := range []struct {
		certManager string
		http, https int
		want        string
	}{
		{"on", 80, 443, "https://localhost/"},
		{"on", 8080, 8443, "https://localhost:8443/"},
		{"off", 80, 443, "http://localhost/"},
		{"off", 8080, 8443, "http://localhost:8080/"},
	} {
		e := &Engine{Cfg: &config.Config{KindHTTPPort: c.http, KindHTTPSPort: c.https}, Env: map[string]string{"ALT_CERT_MANAGER": c.certManager}}
		if got := e.EntryURL(); got != c.want {
			t.Errorf("ALT_CERT_MANAGER=%s, ports %d/%d: %s, want %s", c.certManager, c.http, c.https, got, c.want)
		}
	}
}
