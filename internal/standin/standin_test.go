package standin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alt-platform/orchestration/internal/contract"
	"github.com/alt-platform/orchestration/internal/stack"
	"sigs.k8s.io/yaml"
)

// proc runs Main in-process with the given config, arguments and
// environment; it returns when Main does (or the test's context ends).
type procResult struct {
	code           int
	stdout, stderr string
}

func writeConfig(t *testing.T, cfg Config) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func runProc(ctx context.Context, args []string, env map[string]string, stdin string, ready func(map[int]string)) procResult {
	var out, errb bytes.Buffer
	code := Main(Proc{Args: args, Getenv: envOf(env), Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Ctx: ctx,
		Ready: ready, TerminationLog: "/nonexistent/termination-log",
		Listen: func(int) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }})
	return procResult{code, out.String(), errb.String()}
}

func backend() Config {
	return Config{Name: "alt-backend", Image: "kaikei/alt-backend", Commands: []Command{
		{Mode: "serve", Env: []string{"DB_HOST", "DB_PASSWORD"}, Ports: []Port{{Port: 9000}}, Health: []string{"/v1/health"}},
	}}
}

func TestRefusesWithoutRequiredEnv(t *testing.T) {
	cfg := writeConfig(t, backend())
	r := runProc(context.Background(), []string{"/standin/bin/standin"}, map[string]string{ConfigEnv: cfg, "DB_HOST": "db"}, "", nil)
	if r.code == 0 {
		t.Fatalf("started without DB_PASSWORD: %+v", r)
	}
	if !strings.Contains(r.stderr, "DB_PASSWORD") || strings.Contains(r.stderr, "DB_HOST,") {
		t.Fatalf("the message should name DB_PASSWORD only:\n%s", r.stderr)
	}
}

// serve starts the stand-in and returns the address of each port.
func serve(t *testing.T, cfg Config, env map[string]string, args ...string) (map[int]string, chan procResult, context.CancelFunc) {
	t.Helper()
	env[ConfigEnv] = writeConfig(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addrs := make(chan map[int]string, 1)
	done := make(chan procResult, 1)
	go func() {
		done <- runProc(ctx, append([]string{"/standin/bin/standin"}, args...), env, "", func(a map[int]string) { addrs <- a })
	}()
	select {
	case a := <-addrs:
		return a, done, cancel
	case r := <-done:
		t.Fatalf("stand-in stopped before listening: %+v", r)
	case <-time.After(10 * time.Second):
		t.Fatal("stand-in did not listen within 10s")
	}
	return nil, nil, nil
}

func get(t *testing.T, url string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestServesHealthAndEchoes(t *testing.T) {
	addrs, done, stop := serve(t, backend(), map[string]string{"DB_HOST": "db", "DB_PASSWORD": "x"})
	code, body := get(t, "http://"+addrs[9000]+"/v1/health", nil)
	if code != 200 {
		t.Fatalf("health: %d %s", code, body)
	}
	code, body = get(t, "http://"+addrs[9000]+"/v1/feeds?x=1", map[string]string{"X-Forwarded-Host": "localhost"})
	var e Echo
	if err := json.Unmarshal(body, &e); err != nil || code != 200 {
		t.Fatalf("echo: %d %s %v", code, body, err)
	}
	if e.Standin != "alt-backend" || e.Path != "/v1/feeds" || e.Query != "x=1" || e.Port != 9000 || e.Headers["X-Forwarded-Host"][0] != "localhost" || e.Health {
		t.Fatalf("echo does not say what was received: %+v", e)
	}
	stop()
	if r := <-done; r.code != 0 {
		t.Fatalf("stopped with %d: %s", r.code, r.stderr)
	}
}

// A version in the config is said at start and in every echo (ci's watch
// check edits it to see a rebuilt image answer); none is said by default.
func TestSaysItsVersion(t *testing.T) {
	cfg := backend()
	cfg.Version = "watch-42"
	addrs, done, stop := serve(t, cfg, map[string]string{"DB_HOST": "db", "DB_PASSWORD": "x"})
	_, body := get(t, "http://"+addrs[9000]+"/any", nil)
	var e Echo
	if err := json.Unmarshal(body, &e); err != nil || e.Version != "watch-42" {
		t.Fatalf("echo %s: %v", body, err)
	}
	stop()
	if r := <-done; !strings.Contains(r.stderr, "alt-backend: version watch-42") {
		t.Errorf("not said at start:\n%s", r.stderr)
	}
	addrs, done, stop = serve(t, backend(), map[string]string{"DB_HOST": "db", "DB_PASSWORD": "x"})
	if _, body = get(t, "http://"+addrs[9000]+"/any", nil); strings.Contains(string(body), "version") {
		t.Errorf("a version said without one: %s", body)
	}
	stop()
	if r := <-done; strings.Contains(r.stderr, "version") {
		t.Errorf("a version said without one:\n%s", r.stderr)
	}
}

func TestToldToCrash(t *testing.T) {
	old := CrashAfter
	CrashAfter = 300 * time.Millisecond
	defer func() { CrashAfter = old }()
	addrs, done, _ := serve(t, backend(), map[string]string{"DB_HOST": "db", "DB_PASSWORD": "x", CrashEnv: "1"})
	if code, body := get(t, "http://"+addrs[9000]+"/v1/health", nil); code != 503 || !strings.Contains(string(body), CrashEnv) {
		t.Fatalf("health of a stand-in told to crash: %d %s", code, body)
	}
	select {
	case r := <-done:
		if r.code != 3 || !strings.Contains(r.stderr, "crashing as told") {
			t.Fatalf("want exit 3 naming the crash: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not crash")
	}
}

// database listens on a loopback port that accepts every connection (a
// database that answers a dial), as the database stand-ins do; closing l
// stops it, and so does the end of the test.
func database(t *testing.T) (l net.Listener, host, port string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go acceptAndClose(ctx, l)
	host, port, _ = net.SplitHostPort(l.Addr().String())
	return l, host, port
}

func TestRunModeDialsTheDatabase(t *testing.T) {
	l, host, port := database(t)
	cfg := Config{Name: "postgres", Image: "alt-atlas-migrations", Commands: []Command{
		{Arg: "apply", Mode: "run", Env: []string{"DATABASE_URL"}, Dial: []string{"$DATABASE_URL"}},
	}}
	env := map[string]string{ConfigEnv: writeConfig(t, cfg), "DATABASE_URL": fmt.Sprintf("postgres://u:p@%s:%s/alt?sslmode=disable", host, port)}
	if r := runProc(context.Background(), []string{"standin", "apply"}, env, "", nil); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	if r := runProc(context.Background(), []string{"standin", "status"}, env, "", nil); r.code != 2 || !strings.Contains(r.stderr, "apply") {
		t.Fatalf("an unknown command should fail naming the known ones: %+v", r)
	}
	l.Close()
	old := DialFor
	DialFor = 100 * time.Millisecond
	defer func() { DialFor = old }()
	if r := runProc(context.Background(), []string{"standin", "apply"}, env, "", nil); r.code != 1 || !strings.Contains(r.stderr, "cannot reach") {
		t.Fatalf("an unreachable database should fail: %+v", r)
	}
}

func TestPostgresTools(t *testing.T) {
	l, host, port := database(t)
	env := map[string]string{"PGHOST": host, "PGPORT": port}
	ctx := context.Background()
	if r := runProc(ctx, []string{"pg_isready", "-h", host, "-p", port, "-t", "3"}, nil, "", nil); r.code != 0 || !strings.Contains(r.stdout, "accepting connections") {
		t.Fatalf("pg_isready: %+v", r)
	}
	dump := filepath.Join(t.TempDir(), "x.dump")
	if r := runProc(ctx, []string{"pg_dump", "--format=custom", "--no-owner", "--file=" + dump}, env, "", nil); r.code != 0 {
		t.Fatalf("pg_dump: %+v", r)
	}
	if r := runProc(ctx, []string{"pg_restore", "--list", dump}, env, "", nil); r.code != 0 {
		t.Fatalf("pg_restore --list: %+v", r)
	}
	if r := runProc(ctx, []string{"psql", "--no-psqlrc", "--tuples-only", "--no-align", "--command=select count(*) from t"}, env, "", nil); r.code != 0 || strings.TrimSpace(r.stdout) != "0" {
		t.Fatalf("psql count: %+v", r)
	}
	if r := runProc(ctx, []string{"psql", "-f", "/nonexistent.sql"}, env, "", nil); r.code == 0 {
		t.Fatalf("psql -f of a missing file passed: %+v", r)
	}
	l.Close()
	if r := runProc(ctx, []string{"pg_isready", "-h", host, "-p", port, "-t", "1"}, nil, "", nil); r.code != 2 {
		t.Fatalf("pg_isready against nothing: %+v", r)
	}
	if r := runProc(ctx, []string{"pg_restore", "--list", "/etc/hostname"}, env, "", nil); r.code == 0 {
		t.Fatalf("pg_restore of a non-archive passed: %+v", r)
	}
}

func TestMeilisearchThroughCurlAndJq(t *testing.T) {
	dumps := t.TempDir()
	cfg := Config{Name: "meilisearch", Commands: []Command{{Mode: "serve", API: "meilisearch", Env: []string{"MEILI_MASTER_KEY"}, Ports: []Port{{Port: 7700}}, Health: []string{"/health"}}}}
	addrs, _, _ := serve(t, cfg, map[string]string{"MEILI_MASTER_KEY": "k", "MEILI_DUMP_DIR": dumps})
	url := "http://" + addrs[7700]
	ctx := context.Background()
	if r := runProc(ctx, []string{"curl", "-fsS", "-o", "/dev/null", url + "/health"}, nil, "", nil); r.code != 0 {
		t.Fatalf("curl /health: %+v", r)
	}
	if r := runProc(ctx, []string{"curl", "-fsS", "-X", "POST", url + "/dumps"}, nil, "", nil); r.code != 22 {
		t.Fatalf("a request without the key should fail with -f: %+v", r)
	}
	body := filepath.Join(t.TempDir(), "body")
	r := runProc(ctx, []string{"curl", "-sS", "-o", body, "-w", "%{http_code}", "-H", "Authorization: Bearer k", "-H", "Content-Type: application/json", "-X", "POST", "--data", `{"uid":"u"}`, url + "/keys"}, nil, "", nil)
	if r.code != 0 || r.stdout != "201" {
		t.Fatalf("POST /keys: %+v", r)
	}
	task := runProc(ctx, []string{"curl", "-fsS", "-X", "POST", "-H", "Authorization: Bearer k", url + "/dumps"}, nil, "", nil)
	uid := runProc(ctx, []string{"jq", "-er", ".taskUid"}, nil, task.stdout, nil)
	if uid.code != 0 || strings.TrimSpace(uid.stdout) != "1" {
		t.Fatalf("jq .taskUid of %q: %+v", task.stdout, uid)
	}
	st := runProc(ctx, []string{"curl", "-fsS", "-H", "Authorization: Bearer k", url + "/tasks/1"}, nil, "", nil)
	dump := runProc(ctx, []string{"jq", "-er", ".details.dumpUid"}, nil, st.stdout, nil)
	if dump.code != 0 {
		t.Fatalf("jq .details.dumpUid of %q: %+v", st.stdout, dump)
	}
	if _, err := os.Stat(filepath.Join(dumps, strings.TrimSpace(dump.stdout)+".dump")); err != nil {
		t.Fatalf("the dump file is not in MEILI_DUMP_DIR: %v", err)
	}
	if r := runProc(ctx, []string{"jq", "-e", ".missing"}, nil, "{}", nil); r.code != 1 {
		t.Fatalf("jq -e of a missing field: %+v", r)
	}
}

func TestClickhouseClientReadsItsConfigFile(t *testing.T) {
	l, host, port := database(t)
	cf := filepath.Join(t.TempDir(), "client.xml")
	os.WriteFile(cf, []byte(fmt.Sprintf("<config>\n  <host>%s</host>\n  <port>%s</port>\n  <user>u</user>\n</config>\n", host, port)), 0o600)
	if r := runProc(context.Background(), []string{"clickhouse-client", "--config-file=" + cf, "--query", "SELECT 1"}, nil, "", nil); r.code != 0 {
		t.Fatalf("clickhouse-client: %+v", r)
	}
	l.Close()
	if r := runProc(context.Background(), []string{"clickhouse-client", "--config-file=" + cf, "--query", "SELECT 1"}, nil, "", nil); r.code == 0 {
		t.Fatalf("clickhouse-client reached a closed port: %+v", r)
	}
}

// The contract's services become stand-ins that require what the contract
// requires, listen where it says, and run the commands the charts give.
func TestFirstPartyFromTheContract(t *testing.T) {
	c, err := contract.Load("../..")
	if err != nil {
		t.Fatal(err)
	}
	find := func(cfg Config, argv0, arg string) *Command {
		for i, cmd := range cfg.Commands {
			if (cmd.Argv0 == "" || cmd.Argv0 == argv0) && (cmd.Arg == "" || cmd.Arg == arg) {
				return &cfg.Commands[i]
			}
		}
		return nil
	}
	be := FirstParty(*c.Service("alt-backend"))
	if m := find(be, "standin", ""); m == nil || m.Mode != "serve" || m.Ports[0].Port != 9000 || m.Health[0] != "/v1/health" || len(m.Env) != 5 {
		t.Errorf("alt-backend: %+v", be)
	}
	atm := FirstParty(*c.Service("auth-token-manager"))
	if m := find(atm, "deno", "run"); m == nil || m.Mode != "run" || len(m.Ports) != 0 {
		t.Errorf("auth-token-manager's refresh: %+v", atm)
	}
	mig := FirstParty(*c.Service("postgres"))
	if m := find(mig, "standin", "apply"); m == nil || m.Arg != "apply" || m.Dial[0] != "$DATABASE_URL" {
		t.Errorf("atlas migrations apply: %+v", mig)
	}
	as := FirstParty(*c.Service("auth-service"))
	if m := find(as, "migrate", "-command"); m == nil || m.Mode != "run" {
		t.Errorf("auth-service's /app/migrate: %+v", as)
	}
	if got := Binaries(*c.Service("auth-service")); len(got) != 1 || got[0] != "/app/migrate" {
		t.Errorf("auth-service binaries: %v", got)
	}
	pp := FirstParty(*c.Service("pre-processor"))
	if m := find(pp, "standin", ""); m == nil || m.Mode != "idle" || m.Dial[0] != "${DB_HOST}:${DB_PORT:-5432}" {
		t.Errorf("pre-processor (listens on nothing): %+v", pp)
	}
}

// The tree has every build context and Dockerfile the layers' Skaffold
// artifacts name, under every profile.
func TestTreeHoldsEveryArtifactOfTheLayers(t *testing.T) {
	repo := "../.."
	bin := filepath.Join(t.TempDir(), "standin")
	os.WriteFile(bin, []byte("not a real program"), 0o755)
	dir := t.TempDir()
	if _, err := WriteTree(repo, dir, bin, TreeOptions{Crash: []string{"alt-backend"}}); err != nil {
		t.Fatal(err)
	}
	if ok, m := IsTree(dir); !ok || !strings.Contains(m, Banner) || len(TreeCommit(m)) != 40 {
		t.Fatalf("marker: %v %q", ok, m)
	}
	st, err := stack.Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range st.Names() {
		for _, profile := range []string{"dev", "staging", "prod"} {
			v, err := st.Layer(name).View(profile, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range v.Artifacts {
				_, rel, ok := strings.Cut(filepath.ToSlash(a.Context), stack.SrcLink+"/")
				if !ok {
					t.Fatalf("%s: context %s is not under %s", name, a.Context, stack.SrcLink)
				}
				df, err := os.ReadFile(filepath.Join(dir, rel, a.Dockerfile))
				if err != nil {
					t.Errorf("%s (%s): %v", a.Image, profile, err)
					continue
				}
				n++
				for _, want := range []string{"FROM scratch", "COPY standin/standin", Banner} {
					if !strings.Contains(string(df), want) {
						t.Errorf("%s: Dockerfile lacks %q:\n%s", a.Image, want, df)
					}
				}
				if strings.Contains(string(df), "# syntax") {
					t.Errorf("%s: a # syntax line makes BuildKit fetch a frontend", a.Image)
				}
				if crash := strings.Contains(string(df), CrashEnv); crash != (a.Image == "kaikei/alt-backend") {
					t.Errorf("%s: told to crash: %v", a.Image, crash)
				}
				for arg := range a.BuildArgs {
					if !strings.Contains(string(df), "ARG "+arg+"\n") {
						t.Errorf("%s: build arg %s is not declared", a.Image, arg)
					}
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d artifacts checked", n)
	}
	if _, err := WriteTree(repo, dir, bin, TreeOptions{Crash: []string{"no-such-release"}}); err == nil || !strings.Contains(err.Error(), "no-such-release") {
		t.Fatalf("an unknown release to crash should be named: %v", err)
	}
}

// The node's names are the ones the kubelet's CRI resolves the charts'
// references to (a digest reference drops its tag).
func TestNodeNames(t *testing.T) {
	for ref, want := range map[string]string{
		"postgres:16-alpine":                          "docker.io/library/postgres:16-alpine",
		"nginx:1.28.0-alpine@sha256:30f1":             "docker.io/library/nginx:1.28.0-alpine docker.io/library/nginx@sha256:30f1",
		"clickhouse/clickhouse-server:24.8@sha256:b0": "docker.io/clickhouse/clickhouse-server:24.8 docker.io/clickhouse/clickhouse-server@sha256:b0",
		"localhost:5001/kaikei/alt-backend:abc":       "localhost:5001/kaikei/alt-backend:abc",
		"registry.k8s.io/pause:3.10":                  "registry.k8s.io/pause:3.10",
	} {
		if got := strings.Join(NodeNames(ref), " "); got != want {
			t.Errorf("NodeNames(%s) = %s, want %s", ref, got, want)
		}
	}
}

// Every third-party image the charts name has a stand-in, under the exact
// reference (digest included) the chart's values write.
func TestEveryChartImageHasAStandin(t *testing.T) {
	have := map[string]bool{}
	for _, tp := range ThirdParties {
		for _, r := range tp.Refs {
			have[r] = true
		}
	}
	values, _ := filepath.Glob("../../charts/*/values.yaml")
	n := 0
	var walk func(file string, v any)
	walk = func(file string, v any) {
		switch m := v.(type) {
		case map[string]any:
			repo, _ := m["repository"].(string)
			tag, _ := m["tag"].(string)
			if repo != "" && tag != "" {
				ref := repo + ":" + tag
				if d, _ := m["digest"].(string); d != "" {
					ref += "@" + d
				}
				n++
				if !have[ref] {
					t.Errorf("%s: image %s has no stand-in (standin.ThirdParties)", file, ref)
				}
			}
			for _, x := range m {
				walk(file, x)
			}
		case []any:
			for _, x := range m {
				walk(file, x)
			}
		}
	}
	for _, f := range values {
		b, _ := os.ReadFile(f)
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		walk(f, v)
	}
	if n < 12 {
		t.Fatalf("only %d image references found in charts/*/values.yaml", n)
	}
}
