package engine

import (
	"context"
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
func TestCertManagerAutoIsOffOnAnOfflineKindCluster(t *testing.T) {
	for _, c := range []struct {
		setting string
		offline bool
		want    string
	}{
		{"auto", true, "off"},
		{"auto", false, ""},
		{"on", true, ""},
	} {
		e := &Engine{Cfg: &config.Config{Cluster: config.ClusterKind, CertManager: c.setting},
			Env: map[string]string{}, Cluster: offlineKind{offline: c.offline}}
		e.decideCertManager(context.Background(), false)
		if got := e.Env["ALT_CERT_MANAGER"]; got != c.want {
			t.Errorf("ALT_CERT_MANAGER=%s, offline %v: the layers see %q, want %q", c.setting, c.offline, got, c.want)
		}
	}
}
