package config

import (
	"strings"
	"testing"
)

func TestKindSettings(t *testing.T) {
	noDocker := func() bool { return false }
	c, err := Load(env(map[string]string{"HOME": "/h"}), noDocker)
	if err != nil {
		t.Fatal(err)
	}
	if c.KindName != "alt" || c.KindRegistryPort != 5001 || c.KindRecreate || c.KindOffline != "auto" {
		t.Errorf("defaults: %q %d %v %q", c.KindName, c.KindRegistryPort, c.KindRecreate, c.KindOffline)
	}
	c, err = Load(env(map[string]string{"HOME": "/h", "ALT_KIND_NAME": "dev.2", "ALT_KIND_REGISTRY_PORT": "5050", "ALT_KIND_RECREATE": "1", "ALT_KIND_OFFLINE": "1"}), noDocker)
	if err != nil {
		t.Fatal(err)
	}
	if c.KindName != "dev.2" || c.KindRegistryPort != 5050 || !c.KindRecreate || c.KindOffline != "on" {
		t.Errorf("set: %q %d %v %q", c.KindName, c.KindRegistryPort, c.KindRecreate, c.KindOffline)
	}
	if c, _ = Load(env(map[string]string{"HOME": "/h", "ALT_KIND_OFFLINE": "0"}), noDocker); c.KindOffline != "off" {
		t.Errorf("ALT_KIND_OFFLINE=0: %q", c.KindOffline)
	}
	_, err = Load(env(map[string]string{"HOME": "/h", "ALT_CLUSTER": "kind", "ALT_KIND_NAME": "Alt_1",
		"ALT_KIND_REGISTRY_PORT": "80", "ALT_KIND_RECREATE": "yes", "ALT_KIND_OFFLINE": "yes", "ALT_REGISTRY": "ghcr.io/x"}), noDocker)
	for _, want := range []string{`ALT_KIND_NAME="Alt_1"`, `ALT_KIND_REGISTRY_PORT="80"`, `ALT_KIND_RECREATE="yes"`, `ALT_KIND_OFFLINE="yes"`, `ALT_REGISTRY="ghcr.io/x": not used with ALT_CLUSTER=kind`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
