// Package standin makes stand-ins for what cannot be built or pulled
// offline: Alt's first-party services (a tree laid out like Alt's sources at
// the pinned commit, whose Dockerfiles build FROM scratch around one small
// static program) and the third-party images the charts run (PostgreSQL,
// ClickHouse, Meilisearch, Kratos, envoy, Prometheus, Grafana, alpine/k8s).
//
// The program (Main, built from ./cmd/standin with CGO_ENABLED=0) behaves as
// its image's config (/standin/config.json) says: it refuses to start
// without the variables the real process requires, naming each; it listens
// on the real ports and answers the real health paths; every HTTP answer is
// a JSON echo of what it received (who answered, port, method, path,
// headers), so a test can see where a request went through nginx-external.
// Called by another name (argv[0]) it is one of the client tools the
// charts' scripts and exec probes run: pg_isready, psql, pg_dump,
// pg_restore, createdb, dropdb, clickhouse-client, curl, jq.
//
// No Alt code and no third-party server runs in a stand-in. A tree of
// stand-in sources is announced loudly wherever it is used.
package standin

// ConfigPath is where an image holds its config.
const ConfigPath = "/standin/config.json"

// ConfigEnv overrides ConfigPath (tests).
const ConfigEnv = "ALT_STANDIN_CONFIG"

// CrashEnv tells a stand-in to fail: "1" (or "exit") answers its health
// paths with 503 for CrashAfter, so the kubelet records probe failures,
// then exits with status 3.
const CrashEnv = "ALT_STANDIN_CRASH"

// Marker is the file at the root of a stand-in tree; it names the Alt
// commit whose layout the tree copies.
const Marker = ".alt-standin"

// Config is what one image's program does.
type Config struct {
	// Name is what it stands in for: a release (first party) or an image.
	Name string `json:"name"`
	// Image is the image reference (or Alt's image name) it is built as.
	Image string `json:"image"`
	// Commands: the first whose Argv0 and Arg match the process's runs.
	Commands []Command `json:"commands"`
	// Source says where the behaviour was read from.
	Source string `json:"source,omitempty"`
	// Version is what the stand-in says it is, at start and in every echo
	// ("" : nothing said). Generated trees leave it empty; a test edits it
	// in a build context to see a rebuilt image answer (ci's watch check).
	Version string `json:"version,omitempty"`
}

// Command is one way the image is run.
type Command struct {
	// Argv0 is the base name of argv[0] ("" any).
	Argv0 string `json:"argv0,omitempty"`
	// Arg is the first argument ("" any).
	Arg string `json:"arg,omitempty"`
	// Mode: "serve" listens on Ports until stopped, "idle" runs until
	// stopped without listening, "run" checks and exits 0.
	Mode string `json:"mode"`
	// Env are the variables it refuses to start without.
	Env []string `json:"env,omitempty"`
	// Ports it listens on; HTTP ports echo, TCP ports accept and close.
	Ports []Port `json:"ports,omitempty"`
	// Health are the HTTP paths its probes use (answered 200, 503 when told to crash).
	Health []string `json:"health,omitempty"`
	// Dial are addresses it must reach before it is up ("${DB_HOST}:${DB_PORT:-5432}",
	// or a variable holding a URL: "$DATABASE_URL"); tried for DialFor.
	Dial []string `json:"dial,omitempty"`
	// API is a built-in behaviour beyond the echo: "meilisearch", "clickhouse".
	API string `json:"api,omitempty"`
}

// Port is one listening port.
type Port struct {
	Port int  `json:"port"`
	TCP  bool `json:"tcp,omitempty"` // plain TCP (databases' wire protocols)
}
