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
	if c.KindName != "alt" || c.KindRegistryPort != 5001 || c.KindRecreate {
		t.Errorf("defaults: %q %d %v", c.KindName, c.KindRegistryPort, c.KindRecreate)
	}
	c, err = Load(env(map[string]string{"HOME": "/h", "ALT_KIND_NAME": "dev.2", "ALT_KIND_REGISTRY_PORT": "5050", "ALT_KIND_RECREATE": "1"}), noDocker)
	if err != nil {
		t.Fatal(err)
	}
	if c.KindName != "dev.2" || c.KindRegistryPort != 5050 || !c.KindRecreate {
		t.Errorf("set: %q %d %v", c.KindName, c.KindRegistryPort, c.KindRecreate)
	}
	_, err = Load(env(map[string]string{"HOME": "/h", "ALT_CLUSTER": "kind", "ALT_KIND_NAME": "Alt_1",
		"ALT_KIND_REGISTRY_PORT": "80", "ALT_KIND_RECREATE": "yes", "ALT_REGISTRY": "ghcr.io/x"}), noDocker)
	for _, want := range []string{`ALT_KIND_NAME="Alt_1"`, `ALT_KIND_REGISTRY_PORT="80"`, `ALT_KIND_RECREATE="yes"`, `ALT_REGISTRY="ghcr.io/x": not used with ALT_CLUSTER=kind`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
