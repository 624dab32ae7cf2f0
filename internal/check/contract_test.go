package check

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alt-platform/orchestration/internal/contract"
	"github.com/alt-platform/orchestration/internal/stack"
)

// TestContract renders the real repository, holds it to the real contract
// (it must pass in every profile), then breaks one rendered object or one
// contract fact at a time the way a wrong chart or values file would, and
// expects the check to name the culprit.
func TestContract(t *testing.T) {
	if testing.Short() {
		t.Skip("renders the whole platform; skipped with -short")
	}
	helm, r := tool(t, "helm")
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	s, err := stack.Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	c, err := contract.Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := Render(context.Background(), r, s, helm, "dev", "staging", "prod")
	if err != nil {
		t.Fatal(err)
	}
	all := Objects(rendered)
	if err := Contract(c, s, all); err != nil {
		t.Fatalf("the repository breaks %s: %v", contract.File, err)
	}
	var dev []*Object
	for _, o := range all {
		if o.Profile == "dev" {
			dev = append(dev, o)
		}
	}

	// Broken rendered objects: in the object of kind and release (in
	// namespace ns, when set), the first `old` becomes `new`.
	objectCases := []struct {
		name, kind, release, old, new, want string
		ns                                  string
	}{
		{"a required variable unset", "Deployment", "auth-service", "- name: DB_PASSWORD\n", "- name: DB_PASSWORDX\n",
			"env DB_PASSWORD is not set; Alt's code requires it (auth-service/app/config/config.go:59-62", ""},
		{"a probe on a path the code does not serve", "Deployment", "alt-backend", "path: /v1/health", "path: /health",
			"GET /health on port 9000: Alt's code serves health on GET /v1/health on 9000", ""},
		{"a port the code does not listen on", "Deployment", "search-indexer", "containerPort: 9300", "containerPort: 9301",
			"containerPort 9301: Alt's code listens on 9300", ""},
		// pre-processor listens on nothing: a TCP probe on any port is wrong.
		{"a network probe where nothing listens", "Deployment", "pre-processor", "          resources:",
			"          readinessProbe:\n            tcpSocket:\n              port: 9200\n          resources:",
			"readinessProbe connects to port 9200: Alt's code listens on no port at all", ""},
		{"the superuser's Secret instead of the role's", "Deployment", "tag-generator", "name: postgres-tag-generator-user\n                  key: username", "name: postgres-credentials\n                  key: username",
			"must come from Secret postgres-tag-generator-user key username (role tag_generator_user", ""},
		{"the image's default command", "CronJob", "auth-token-manager", "- refresh", "- health",
			"Alt's image must run [\"deno\" \"run\" \"--allow-all\" \"main.ts\" \"refresh\"]", ""},
		{"a route to the wrong path", "ConfigMap", "nginx-external", "auth-service.alt-auth.svc:8080/v1/auth/;", "auth-service.alt-auth.svc:8080/;",
			"location /api/auth/ proxies to http://auth-service.alt-auth.svc:8080/; Alt routes it to http://auth-service.alt-auth.svc:8080/v1/auth/", ""},
		{"a route missing", "ConfigMap", "nginx-external", "location /ory/ {", "location /oryx/ {",
			"no location /ory/; Alt routes it to http://kratos-public.alt-auth.svc:4433/", ""},
		{"the entry's own health path missing", "ConfigMap", "nginx-external", "location = /nginx-health {", "location = /healthz {",
			"server (listen 8080): no location /nginx-health answered by nginx itself", ""},
		// dev renders with cert-manager: a second, HTTPS server, checked
		// on its own.
		{"the HTTPS server without the entry's health path", "ConfigMap", "nginx-external", "ssl_session_timeout 1h;\n        location = /nginx-health {", "ssl_session_timeout 1h;\n        location = /healthz {",
			"server (listen 8443 ssl): no location /nginx-health answered by nginx itself", ""},
		{"the HTTPS server without a route", "ConfigMap", "nginx-external", "ssl_session_timeout 1h;\n        location = /nginx-health {\n          access_log off;\n          default_type text/plain;\n          return 200 \"ok\\n\";\n        }\n        \n        location / {",
			"ssl_session_timeout 1h;\n        location = /nginx-health {\n          access_log off;\n          default_type text/plain;\n          return 200 \"ok\\n\";\n        }\n        \n        location /elsewhere/ {",
			"server (listen 8443 ssl): no location /; Alt routes it to http://alt-frontend.alt-apps.svc:3000/", ""},
		{"a role Secret with another user", "Secret", "postgres", "username: c2VhcmNoX2luZGV4ZXJfdXNlcg==", "username: cG9zdGdyZXM=",
			"holds username \"postgres\"; search-indexer connects as search_indexer_user", "alt-processing"},
		{"the service's own migration not run", "Job", "auth-service", "- /app/migrate\n", "- /app/migrated\n",
			"no rendered container runs its migration [\"/app/migrate\" \"-command\" \"up\"]", ""},
		{"the master key instead of the scoped one", "Deployment", "search-indexer", "name: meilisearch-search-indexer-key\n                  key: api-key", "name: meilisearch-credentials\n                  key: master-key",
			"env MEILISEARCH_API_KEY must come from Secret meilisearch-search-indexer-key key api-key", ""},
		{"a role the migration grants to, not made first", "ConfigMap", "postgres", "CREATE ROLE \"tag_generator\";", "SELECT 1;",
			"roles.sql does not make role tag_generator, which the migration needs first (migrations-atlas/migrations/20240101002800", ""},
		{"the roles Job after the migration", "Job", "postgres", "helm.sh/hook-weight: \"-5\"", "helm.sh/hook-weight: \"5\"",
			"runs at hook weight 5, not before the migration Job postgres-migrate (weight 0)", ""},
		{"the migration Job without its command", "Job", "postgres", "- apply\n", "- status\n",
			"Alt's image must run [\"apply\"]", ""},
	}
	for _, tc := range objectCases {
		t.Run(tc.name, func(t *testing.T) {
			objs, hit := breakObject(dev, tc.kind, tc.release, tc.ns, tc.old, tc.new)
			if !hit {
				t.Fatalf("no %s of release %s renders %q: the case is stale", tc.kind, tc.release, tc.old)
			}
			err := Contract(c, s, objs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a problem containing %q, got:\n%v", tc.want, err)
			}
		})
	}

	// Broken facts: the Skaffold files disagree with a contract changed so.
	factCases := []struct {
		name   string
		change func(*contract.Contract)
		want   string
	}{
		{"another Dockerfile", func(c *contract.Contract) { c.Service("search-indexer").Dockerfile = "Dockerfile" },
			"skaffold/07-processing/skaffold.yaml: build.artifacts[kaikei/search-indexer]: dockerfile Dockerfile.search-indexer; Alt's is search-indexer/Dockerfile"},
		{"another context", func(c *contract.Contract) { c.Service("sidecar-proxy").Context = "sidecar-proxy" },
			"context ../../.alt-src/alt-backend/sidecar-proxy; Alt builds it from sidecar-proxy"},
		{"a build arg not set", func(c *contract.Contract) {
			f := c.Service("alt-frontend")
			f.BuildArgs = append(f.BuildArgs, contract.Fact{Name: "NEXT_PUBLIC_MISSING", Source: "test"})
		}, "docker.buildArgs.NEXT_PUBLIC_MISSING is not set"},
		{"no probes where the code listens", func(c *contract.Contract) {
			c.Service("pre-processor").Ports = []contract.Fact{{Port: 9200, Source: "test"}}
		}, "pod annotation alt-platform.io/no-probes=\"listens on nothing (docs/alt-contract.yaml)\", but Alt's code listens on 9200"},
		{"an image Alt does not have", func(c *contract.Contract) { c.Service("alt-backend").Image = "alt-backend" },
			"build.artifacts[kaikei/alt-backend]: image kaikei/alt-backend is not in docs/alt-contract.yaml"},
	}
	for _, tc := range factCases {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := contract.Load(repo)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(cc)
			err = Contract(cc, s, dev)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a problem containing %q, got:\n%v", tc.want, err)
			}
		})
	}
}

// breakObject copies objs, replacing the first old with new in the raw
// YAML of the first object of kind and release (and namespace ns, unless
// empty) that contains it.
func breakObject(objs []*Object, kind, release, ns, old, new string) ([]*Object, bool) {
	out := make([]*Object, len(objs))
	hit := false
	for i, o := range objs {
		out[i] = o
		if hit || o.Kind != kind || o.Release != release || (ns != "" && o.Namespace != ns) || !strings.Contains(string(o.Raw), old) {
			continue
		}
		b := *o
		b.Raw = []byte(strings.Replace(string(o.Raw), old, new, 1))
		b.decoded = decode(b.Raw)
		out[i], hit = &b, true
	}
	return out, hit
}
