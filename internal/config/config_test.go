package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	noDocker := func() bool { return false }
	withDocker := func() bool { return true }
	tests := []struct {
		name    string
		env     map[string]string
		docker  Docker
		want    func(*Config) string // "" when fine
		wantErr []string
	}{
		{name: "defaults without docker", env: map[string]string{"HOME": "/h"}, docker: noDocker,
			want: func(c *Config) string {
				if c.Profile != "dev" || c.Cluster != "sim" || c.ToolsDir != "/h/.cache/alt-platform/tools" {
					return "got " + c.Profile + " " + c.Cluster + " " + c.ToolsDir
				}
				if c.Settings[1].Source != "detected: no Docker daemon" {
					return "source " + c.Settings[1].Source
				}
				return ""
			}},
		{name: "docker means kind", env: map[string]string{"HOME": "/h"}, docker: withDocker,
			want: func(c *Config) string {
				if c.Cluster != "kind" {
					return c.Cluster
				}
				return ""
			}},
		{name: "explicit sim wins over docker", env: map[string]string{"ALT_CLUSTER": "sim", "XDG_CACHE_HOME": "/x"}, docker: withDocker,
			want: func(c *Config) string {
				if c.Cluster != "sim" || c.Settings[1].Source != "environment" || c.ToolsDir != "/x/alt-platform/tools" {
					return c.Cluster + c.ToolsDir
				}
				return ""
			}},
		{name: "unknown profile", env: map[string]string{"ALT_PROFILE": "qa"}, docker: noDocker,
			wantErr: []string{`ALT_PROFILE="qa"`, "dev, staging, prod"}},
		{name: "all problems at once", env: map[string]string{"ALT_PROFILE": "staging", "ALT_CLUSTER": "minikube", "ALT_TOOLS_DIR": "rel"}, docker: noDocker,
			wantErr: []string{`ALT_CLUSTER="minikube"`, "ALT_REGISTRY: required for ALT_PROFILE=staging", `ALT_TOOLS_DIR="rel"`}},
		{name: "prod builds nothing: no registry needed", env: map[string]string{"ALT_PROFILE": "prod", "ALT_CLUSTER": "context", "ALT_KUBE_CONTEXT": "gke-prod"}, docker: noDocker,
			want: func(c *Config) string {
				if c.Registry != "" {
					return "registry " + c.Registry
				}
				return ""
			}},
		{name: "context needs a name", env: map[string]string{"ALT_CLUSTER": "context"}, docker: noDocker,
			wantErr: []string{"ALT_KUBE_CONTEXT: required"}},
		{name: "context name without context cluster", env: map[string]string{"ALT_KUBE_CONTEXT": "prod-eu"}, docker: noDocker,
			wantErr: []string{`ALT_KUBE_CONTEXT="prod-eu": only used with ALT_CLUSTER=context`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(tt.env), tt.docker)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error, got none")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.want(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestTargetSafety(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string // "" when allowed
	}{
		{map[string]string{"ALT_PROFILE": "prod", "ALT_CLUSTER": "sim", "ALT_REGISTRY": "r"}, "ALT_PROFILE=prod refuses ALT_CLUSTER=sim"},
		{map[string]string{"ALT_PROFILE": "staging", "ALT_CLUSTER": "kind", "ALT_REGISTRY": "r"}, "ALT_PROFILE=staging refuses ALT_CLUSTER=kind"},
		// A context's name proves nothing: the engine tells kind and sim
		// clusters by their API server and nodes (engine.recognise).
		{map[string]string{"ALT_PROFILE": "prod", "ALT_CLUSTER": "context", "ALT_KUBE_CONTEXT": "kind-alt", "ALT_REGISTRY": "r"}, ""},
		{map[string]string{"ALT_PROFILE": "prod", "ALT_CLUSTER": "context", "ALT_KUBE_CONTEXT": "gke-prod", "ALT_REGISTRY": "r"}, ""},
		{map[string]string{"ALT_OTHER_PROFILE": "yes"}, `ALT_OTHER_PROFILE="yes": expected 1 or 0`},
		{map[string]string{"ALT_CLUSTER": "context", "ALT_KUBE_CONTEXT": "gke-prod", "ALT_FORCE_CONTEXT": "gke-prod"}, ""},
		{map[string]string{"ALT_CLUSTER": "context", "ALT_KUBE_CONTEXT": "kind-alt"}, ""},
		{map[string]string{"ALT_LAYER_TIMEOUT": "soon"}, `ALT_LAYER_TIMEOUT="soon"`},
		{map[string]string{"ALT_CERT_MANAGER": "maybe"}, `ALT_CERT_MANAGER="maybe"`},
		{map[string]string{"ALT_CLUSTER": "sim", "ALT_CERT_MANAGER": "on"}, "ALT_CERT_MANAGER=on: a sim cluster cannot serve"},
		{map[string]string{"ALT_CLUSTER": "context", "ALT_KUBE_CONTEXT": "kind-alt", "ALT_CERT_MANAGER": "on"}, ""},
		// The tests' switch: staging and prod on sim, and nowhere else.
		{map[string]string{"ALT_PROFILE": "staging", "ALT_CLUSTER": "sim", "ALT_REGISTRY": "r", "ALT_TEST_SIM_PROFILES": "1"}, ""},
		{map[string]string{"ALT_PROFILE": "prod", "ALT_CLUSTER": "kind", "ALT_REGISTRY": "r", "ALT_TEST_SIM_PROFILES": "1"}, "ALT_TEST_SIM_PROFILES=1: only with ALT_CLUSTER=sim"},
		{map[string]string{"ALT_PROFILE": "prod", "ALT_CLUSTER": "kind", "ALT_REGISTRY": "r", "ALT_TEST_SIM_PROFILES": "1"}, "ALT_PROFILE=prod refuses ALT_CLUSTER=kind"},
	}
	for _, tt := range tests {
		_, err := Load(env(tt.env), func() bool { return false })
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", tt.env, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: error %v, want %q", tt.env, err, tt.want)
		}
	}
}
