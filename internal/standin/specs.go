package standin

import (
	"path/filepath"
	"strings"

	"github.com/alt-platform/orchestration/internal/contract"
)

// FirstParty is the config of the stand-in for one of Alt's services, read
// from the contract (docs/alt-contract.yaml): its required environment, its
// ports and health paths, its command and migration.
func FirstParty(s contract.Service) Config {
	var env []string
	has := map[string]bool{}
	for _, e := range s.Env {
		env = append(env, e.Name)
		has[e.Name] = true
	}
	// The database it connects to at start (Alt's services fail without it).
	var dial []string
	switch {
	case has["DATABASE_URL"]:
		dial = []string{"$DATABASE_URL"}
	case has["DB_HOST"]:
		dial = []string{"${DB_HOST}:${DB_PORT:-5432}"}
	}
	main := Command{Mode: "idle", Env: env, Dial: dial}
	for _, p := range s.Ports {
		main.Ports = append(main.Ports, Port{Port: p.Port})
	}
	for _, h := range s.Health {
		main.Health = append(main.Health, h.Path)
	}
	if len(main.Ports) > 0 {
		main.Mode = "serve"
	}
	c := Config{Name: s.Release, Image: s.Image, Source: contract.File + " (release " + s.Release + ")"}
	if len(s.Migrate) > 0 {
		c.Commands = append(c.Commands, Command{Argv0: filepath.Base(s.Migrate[0]), Mode: "run", Env: env, Dial: dial})
	}
	if len(s.Command) > 0 {
		// A command the platform must give (a CronJob's run, a migration
		// Job's subcommand): it runs once and exits.
		run := Command{Mode: "run", Env: env, Dial: dial}
		if commandIsProgram(s.Command) {
			run.Argv0 = filepath.Base(s.Command[0])
		} else {
			run.Arg = s.Command[0]
		}
		c.Commands = append(c.Commands, run)
		// Any other command (the image's own default) is a one-off too.
		main.Mode = "run"
		main.Dial = nil
	}
	c.Commands = append(c.Commands, main)
	return c
}

// Binaries are the names (argv[0]) a first-party stand-in image holds its
// program under, in /usr/local/bin, besides its entrypoint.
func Binaries(s contract.Service) []string {
	var names []string
	if len(s.Migrate) > 0 {
		names = append(names, s.Migrate[0])
	}
	if commandIsProgram(s.Command) {
		names = append(names, s.Command[0])
	}
	return names
}

// commandIsProgram tells a contract command that names a program
// ([deno, run, ...]) from one that is only the entrypoint's arguments
// ([apply]).
func commandIsProgram(cmd []string) bool {
	return len(cmd) > 1 || len(cmd) == 1 && strings.HasPrefix(cmd[0], "/")
}

// ThirdParty is one third-party image the charts run, and its stand-in.
type ThirdParty struct {
	// Name is the image's build folder.
	Name string
	// Refs are the exact references the charts use (tag, or tag@digest).
	Refs []string
	// Entrypoint is the program path the real image starts (argv[0]).
	Entrypoint string
	// Cmd is the image's default arguments.
	Cmd []string
	// Tools are the client tools (applets, by name) it carries.
	Tools []string
	// Kubectl: the real kubectl (the tools cache's, static) is copied in.
	Kubectl bool
	// Real: not a stand-in, Debian's own build of the server (nginx).
	Real   bool
	Config Config
	// Source says where the ports, probes and commands were read.
	Source string
}

var pgTools = []string{"pg_isready", "psql", "pg_dump", "pg_restore", "createdb", "dropdb"}

// ThirdParties are the third-party images of charts/*/values.yaml (every
// reference, digest included: the digest-pinned ones are imported into the
// kind node under that exact name, a registry could not serve them).
var ThirdParties = []ThirdParty{
	{
		Name: "postgres",
		Refs: []string{"postgres:16-alpine",
			// kratos's wait init container (charts/kratos/values.yaml migration.waitImage).
			"postgres:16-alpine@sha256:57c72fd2a128e416c7fcc499958864df5301e940bca0a56f58fddf30ffc07777"},
		Entrypoint: "/usr/local/bin/docker-entrypoint.sh", Cmd: []string{"postgres"},
		Tools:  pgTools,
		Source: "charts/postgres/templates/statefulset.yaml (port 5432, exec probes pg_isready), roles-job.yaml (psql -f), charts/backups/files/postgres-*.sh, charts/kratos/templates/migration-job.yaml (sh, pg_isready)",
		Config: Config{Name: "postgres", Image: "postgres:16-alpine", Commands: []Command{
			{Mode: "serve", Env: []string{"POSTGRES_PASSWORD"}, Ports: []Port{{Port: 5432, TCP: true}}},
		}},
	},
	{
		Name:       "clickhouse",
		Refs:       []string{"clickhouse/clickhouse-server:24.8-alpine@sha256:b002e56ed5c16e224c312527f6fcba7e77216fec5d7a88a7828f59efc614feb5"},
		Entrypoint: "/entrypoint.sh",
		Tools:      []string{"clickhouse-client"},
		Source:     "charts/clickhouse (ports 8123 /ping, 9000 native, 9363 metrics), charts/backups/files/clickhouse-*.sh",
		Config: Config{Name: "clickhouse", Image: "clickhouse/clickhouse-server:24.8-alpine", Commands: []Command{
			{Mode: "serve", API: "clickhouse", Ports: []Port{{Port: 8123}, {Port: 9000, TCP: true}, {Port: 9363}}, Health: []string{"/ping"}},
		}},
	},
	{
		Name:       "meilisearch",
		Refs:       []string{"getmeili/meilisearch:v1.15.2@sha256:fe500cf9cca05cb9f027981583f28eccf17d35d94499c1f8b7b844e7418152fc"},
		Entrypoint: "/bin/meilisearch",
		Tools:      []string{"curl"},
		Source:     "charts/meilisearch (port 7700 /health, MEILI_MASTER_KEY, dumps in MEILI_DUMP_DIR), scoped-key.sh (curl: /keys, then the API server), charts/backups/files/meilisearch-*.sh (/dumps, /tasks)",
		Config: Config{Name: "meilisearch", Image: "getmeili/meilisearch:v1.15.2", Commands: []Command{
			{Mode: "serve", API: "meilisearch", Env: []string{"MEILI_MASTER_KEY"}, Ports: []Port{{Port: 7700}}, Health: []string{"/health"}},
		}},
	},
	{
		Name:       "kratos",
		Refs:       []string{"oryd/kratos:v1.3.1@sha256:fe2428f103a6240c064b6ea77d3088610865c55fcebccb30355857eccdc25b4b"},
		Entrypoint: "/usr/bin/kratos",
		Source:     "charts/kratos (serve: public 4433, admin 4434, /health/alive, /health/ready; migrate sql; DSN)",
		Config: Config{Name: "kratos", Image: "oryd/kratos:v1.3.1", Commands: []Command{
			{Arg: "serve", Mode: "serve", Env: []string{"DSN"}, Dial: []string{"$DSN"},
				Ports: []Port{{Port: 4433}, {Port: 4434}}, Health: []string{"/health/alive", "/health/ready"}},
			{Arg: "migrate", Mode: "run", Env: []string{"DSN"}, Dial: []string{"$DSN"}},
		}},
	},
	{
		Name:       "envoy",
		Refs:       []string{"envoyproxy/envoy:v1.35.0"},
		Entrypoint: "/usr/local/bin/envoy",
		Source:     "charts/envoy-proxy (command envoy; proxy 8080, admin 9901 /ready)",
		Config: Config{Name: "envoy-proxy", Image: "envoyproxy/envoy:v1.35.0", Commands: []Command{
			{Mode: "serve", Ports: []Port{{Port: 8080}, {Port: 9901}}, Health: []string{"/ready"}},
		}},
	},
	{
		Name:       "prometheus",
		Refs:       []string{"prom/prometheus:v3.5.0@sha256:63805ebb8d2b3920190daf1cb14a60871b16fd38bed42b857a3182bc621f4996"},
		Entrypoint: "/bin/prometheus",
		Source:     "charts/monitoring/templates/prometheus.yaml (9090, /-/ready, /-/healthy)",
		Config: Config{Name: "prometheus", Image: "prom/prometheus:v3.5.0", Commands: []Command{
			{Mode: "serve", Ports: []Port{{Port: 9090}}, Health: []string{"/-/ready", "/-/healthy"}},
		}},
	},
	{
		Name:       "grafana",
		Refs:       []string{"grafana/grafana:12.0.2@sha256:b5b59bfc7561634c2d7b136c4543d702ebcc94a3da477f21ff26f89ffd4214fa"},
		Entrypoint: "/run.sh",
		Source:     "charts/monitoring/templates/grafana.yaml (3000, /api/health, GF_SECURITY_ADMIN_*)",
		Config: Config{Name: "grafana", Image: "grafana/grafana:12.0.2", Commands: []Command{
			{Mode: "serve", Env: []string{"GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD"}, Ports: []Port{{Port: 3000}}, Health: []string{"/api/health"}},
		}},
	},
	{
		Name:    "alpine-k8s",
		Refs:    []string{"alpine/k8s:1.34.1@sha256:ec714df3813b5405292860f8a1c55c5727bf8c33c88992f1e981efad8065547f"},
		Tools:   []string{"curl", "jq"},
		Kubectl: true,
		Source:  "charts/backups (meilisearch-*.sh: sh, curl, jq, kubectl exec, gzip)",
		Config:  Config{Name: "alpine-k8s", Image: "alpine/k8s:1.34.1"},
	},
	{
		Name:   "nginx",
		Refs:   []string{"nginx:1.28.0-alpine@sha256:30f1c0d78e0ad60901648be663a710bdadf19e4c10ac6782c235200619158284"},
		Real:   true,
		Source: "charts/nginx (command nginx -g 'daemon off;', the chart's nginx.conf, /nginx-health): Debian's nginx-light, not a stand-in",
	},
}
