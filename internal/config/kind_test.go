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
	if c.KindName != "alt" || c.KindRegistryPort != 5001 || c.KindRecreate || c.KindOffline != "auto" || c.KindHTTPPort != 80 || c.KindHTTPSPort != 443 {
		t.Errorf("defaults: %q %d %v %q %d %d", c.KindName, c.KindRegistryPort, c.KindRecreate, c.KindOffline, c.KindHTTPPort, c.KindHTTPSPort)
	}
	if c, err = Load(env(map[string]string{"HOME": "/h", "ALT_KIND_HTTP_PORT": "8014", "ALT_KIND_HTTPS_PORT": "8414"}), noDocker); err != nil || c.KindHTTPPort != 8014 || c.KindHTTPSPort != 8414 {
		t.Errorf("ports set: %v %+v", err, c)
	}
	_, err = Load(env(map[string]string{"HOME": "/h", "ALT_KIND_HTTP_PORT": "http", "ALT_KIND_HTTPS_PORT": "70000"}), noDocker)
	for _, want := range []string{`ALT_KIND_HTTP_PORT="http": expected a port number`, `ALT_KIND_HTTPS_PORT="70000": expected a port number`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	_, err = Load(env(map[string]string{"HOME": "/h", "ALT_KIND_HTTP_PORT": "5001"}), noDocker)
	if err == nil || !strings.Contains(err.Error(), "ALT_KIND_HTTP_PORT=5001, ALT_KIND_HTTPS_PORT=443, ALT_KIND_REGISTRY_PORT=5001: the kind cluster's host ports must differ") {
		t.Errorf("the same port twice: %v", err)
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
