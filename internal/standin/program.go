package standin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Proc is what the program sees of its process: arguments, environment and
// output, so that tests run it in-process.
type Proc struct {
	Args   []string
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Ctx ends a serving or idle stand-in (SIGTERM in the real program).
	Ctx context.Context
	// Ready, when set, is called once every port listens (tests).
	Ready func(addrs map[int]string)
	// TerminationLog overrides TerminationLog (tests).
	TerminationLog string
	// Listen overrides net.Listen (tests bind to loopback port 0).
	Listen func(port int) (net.Listener, error)
}

// Timings; variables so tests can shorten them.
var (
	// CrashAfter is how long a stand-in told to crash answers 503 first.
	CrashAfter = 10 * time.Second
	// DialFor is how long a stand-in tries to reach each Dial address.
	DialFor = 60 * time.Second
)

// Main runs the program and returns its exit status.
func Main(p Proc) int {
	if p.Ctx == nil {
		p.Ctx = context.Background()
	}
	if p.Stdin == nil {
		p.Stdin = strings.NewReader("")
	}
	argv0 := filepath.Base(p.Args[0])
	if a, ok := applets[argv0]; ok {
		return a(p)
	}
	cfg, err := loadConfig(p.Getenv)
	if err != nil {
		fmt.Fprintf(p.Stderr, "stand-in %s: %v\n", argv0, err)
		return 2
	}
	var arg string
	if len(p.Args) > 1 {
		arg = p.Args[1]
	}
	for _, c := range cfg.Commands {
		if (c.Argv0 == "" || c.Argv0 == argv0) && (c.Arg == "" || c.Arg == arg) {
			return runCommand(p, cfg, c)
		}
	}
	fmt.Fprintf(p.Stderr, "stand-in for %s: no behaviour for %q (config %s); it knows: %s\n",
		cfg.Name, strings.Join(p.Args, " "), configPath(p.Getenv), describe(cfg))
	return 2
}

func describe(cfg *Config) string {
	var s []string
	for _, c := range cfg.Commands {
		s = append(s, strings.TrimSpace(c.Argv0+" "+c.Arg))
	}
	return strings.Join(s, ", ")
}

func configPath(getenv func(string) string) string {
	if p := getenv(ConfigEnv); p != "" {
		return p
	}
	return ConfigPath
}

func loadConfig(getenv func(string) string) (*Config, error) {
	path := configPath(getenv)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("no stand-in config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func runCommand(p Proc, cfg *Config, c Command) int {
	who := cfg.Name
	fmt.Fprintf(p.Stderr, "stand-in for %s (%s): no Alt or third-party code runs here\n", who, cfg.Image)
	if cfg.Version != "" {
		fmt.Fprintf(p.Stderr, "%s: version %s\n", who, cfg.Version)
	}
	var missing []string
	for _, v := range c.Env {
		if p.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		lastWords(p, fmt.Sprintf("%s: refusing to start: required environment variable(s) not set: %s", who, strings.Join(missing, ", ")))
		return 1
	}
	for _, d := range c.Dial {
		addr, err := dialAddress(d, p.Getenv)
		if err != nil {
			fmt.Fprintf(p.Stderr, "%s: %v\n", who, err)
			return 1
		}
		if err := dialUntil(p.Ctx, addr, DialFor); err != nil {
			fmt.Fprintf(p.Stderr, "%s: cannot reach %s (%s): %v\n", who, addr, d, err)
			return 1
		}
		fmt.Fprintf(p.Stderr, "%s: reached %s\n", who, addr)
	}
	crash := p.Getenv(CrashEnv)
	crashing := crash == "1" || crash == "exit" || crash == "true"
	switch c.Mode {
	case "run":
		if crashing {
			fmt.Fprintf(p.Stderr, "%s: told to crash (%s=%s)\n", who, CrashEnv, crash)
			return 3
		}
		fmt.Fprintf(p.Stdout, "%s: %s done (stand-in)\n", who, strings.Join(p.Args, " "))
		return 0
	case "idle", "serve":
	default:
		fmt.Fprintf(p.Stderr, "%s: unknown mode %q in the stand-in config\n", who, c.Mode)
		return 2
	}
	ctx, cancel := context.WithCancel(p.Ctx)
	defer cancel()
	s := &server{name: who, version: cfg.Version, cmd: c, getenv: p.Getenv, log: p.Stderr, crashing: crashing}
	addrs := map[int]string{}
	var servers []*http.Server
	for _, port := range c.Ports {
		listen := p.Listen
		if listen == nil {
			listen = func(port int) (net.Listener, error) { return net.Listen("tcp", fmt.Sprintf(":%d", port)) }
		}
		l, err := listen(port.Port)
		if err != nil {
			fmt.Fprintf(p.Stderr, "%s: listen on port %d: %v\n", who, port.Port, err)
			return 1
		}
		addrs[port.Port] = l.Addr().String()
		if port.TCP {
			go acceptAndClose(ctx, l)
			continue
		}
		hs := &http.Server{Handler: s.handler(port.Port), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, hs)
		go hs.Serve(l)
	}
	if len(c.Ports) > 0 {
		fmt.Fprintf(p.Stderr, "%s: listening on %s\n", who, portList(c.Ports))
	}
	if p.Ready != nil {
		p.Ready(addrs)
	}
	status := 0
	if crashing {
		fmt.Fprintf(p.Stderr, "%s: told to crash (%s=%s): health answers 503, exit in %s\n", who, CrashEnv, crash, CrashAfter)
		select {
		case <-ctx.Done():
		case <-time.After(CrashAfter):
			lastWords(p, fmt.Sprintf("%s: crashing as told (%s=%s)", who, CrashEnv, crash))
			status = 3
		}
	} else {
		<-ctx.Done()
	}
	for _, hs := range servers {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		hs.Shutdown(sctx)
		c()
	}
	return status
}

// TerminationLog is where the kubelet reads a container's last words
// (terminationMessagePath); Proc.TerminationLog overrides it in tests.
const TerminationLog = "/dev/termination-log"

// lastWords says why the program stops, on stderr and in the termination
// log, so that the pod's last state carries it.
func lastWords(p Proc, msg string) {
	fmt.Fprintln(p.Stderr, msg)
	path := p.TerminationLog
	if path == "" {
		path = TerminationLog
	}
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		f.WriteString(msg + "\n")
		f.Close()
	}
}

func portList(ps []Port) string {
	var s []string
	for _, p := range ps {
		kind := "http"
		if p.TCP {
			kind = "tcp"
		}
		s = append(s, fmt.Sprintf("%d/%s", p.Port, kind))
	}
	return strings.Join(s, ", ")
}

func acceptAndClose(ctx context.Context, l net.Listener) {
	go func() { <-ctx.Done(); l.Close() }()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			// Hold briefly so a client sees an open connection, then close.
			c.SetDeadline(time.Now().Add(2 * time.Second))
			io.Copy(io.Discard, io.LimitReader(c, 1<<16))
			c.Close()
		}()
	}
}

var hostPortAfterAt = regexp.MustCompile(`@([A-Za-z0-9.-]+):([0-9]+)(?:[/?]|$)`)

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expand replaces $VAR, ${VAR} and ${VAR:-default}; it names every
// variable that is unset and has no default.
func expand(s string, getenv func(string) string) (string, error) {
	var unset []string
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		sm := varRef.FindStringSubmatch(m)
		name := sm[1]
		if name == "" {
			name = sm[4]
		}
		if v := getenv(name); v != "" {
			return v
		}
		if sm[2] != "" {
			return sm[3]
		}
		unset = append(unset, name)
		return ""
	})
	if len(unset) > 0 {
		return "", fmt.Errorf("%s: %s not set", s, strings.Join(unset, ", "))
	}
	return out, nil
}

// dialAddress is the host:port a Dial entry names: after expansion, a URL
// (postgres://, http://, ...) or host:port.
func dialAddress(entry string, getenv func(string) string) (string, error) {
	s, err := expand(entry, getenv)
	if err != nil {
		return "", err
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			// A password with URL-reserved characters: take host:port
			// after the last '@'.
			if m := hostPortAfterAt.FindStringSubmatch(s); m != nil {
				return net.JoinHostPort(m[1], m[2]), nil
			}
			return "", fmt.Errorf("%s: not a URL: %w", entry, err)
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443", "postgres": "5432", "postgresql": "5432"}[u.Scheme]
		}
		if host == "" || port == "" {
			return "", fmt.Errorf("%s: no host and port in %q", entry, s)
		}
		return net.JoinHostPort(host, port), nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", fmt.Errorf("%s: want host:port, got %q", entry, s)
	}
	return s, nil
}

func dialUntil(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Echo is what every HTTP answer carries.
type Echo struct {
	Standin string              `json:"standin"`
	Port    int                 `json:"port"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query,omitempty"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Health  bool                `json:"health,omitempty"`
	Version string              `json:"version,omitempty"`
}

type server struct {
	name     string
	version  string
	cmd      Command
	getenv   func(string) string
	log      io.Writer
	crashing bool

	mu    sync.Mutex
	tasks map[int]string // meilisearch dump tasks: uid
}

func (s *server) handler(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		health := false
		for _, h := range s.cmd.Health {
			if r.URL.Path == h {
				health = true
			}
		}
		if health && s.crashing {
			http.Error(w, s.name+": told to crash ("+CrashEnv+")", http.StatusServiceUnavailable)
			return
		}
		if s.api(w, r, health) {
			return
		}
		e := Echo{Standin: s.name, Port: port, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Host: r.Host, Headers: r.Header, Health: health, Version: s.version}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Standin", s.name)
		json.NewEncoder(w).Encode(e)
	})
}

// api answers what a built-in API stands in for; false: echo instead.
func (s *server) api(w http.ResponseWriter, r *http.Request, health bool) bool {
	switch s.cmd.API {
	case "clickhouse":
		if r.URL.Path == "/ping" {
			io.WriteString(w, "Ok.\n")
			return true
		}
	case "meilisearch":
		return s.meilisearch(w, r)
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// meilisearch answers the part of Meilisearch's API the charts use:
// /health, keys (scoped-key Job) and dumps (backups).
func (s *server) meilisearch(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if p == "/health" {
		writeJSON(w, 200, map[string]string{"status": "available"})
		return true
	}
	if key := s.getenv("MEILI_MASTER_KEY"); key != "" && r.Header.Get("Authorization") != "Bearer "+key {
		writeJSON(w, 401, map[string]string{"message": "The provided API key is invalid.", "code": "invalid_api_key"})
		return true
	}
	switch {
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/keys/"):
		writeJSON(w, 404, map[string]string{"message": "API key `" + strings.TrimPrefix(p, "/keys/") + "` not found.", "code": "api_key_not_found"})
	case r.Method == http.MethodPost && p == "/keys":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, 400, map[string]string{"message": err.Error(), "code": "bad_request"})
			return true
		}
		body["key"] = fmt.Sprintf("%064x", time.Now().UnixNano())
		writeJSON(w, 201, body)
	case r.Method == http.MethodPost && p == "/dumps":
		dir := s.getenv("MEILI_DUMP_DIR")
		if dir == "" {
			dir = "/meili_data/dumps"
		}
		uid := time.Now().UTC().Format("20060102-150405000")
		if err := writeDump(filepath.Join(dir, uid+".dump")); err != nil {
			writeJSON(w, 500, map[string]string{"message": err.Error(), "code": "dump_process_failed"})
			return true
		}
		s.mu.Lock()
		if s.tasks == nil {
			s.tasks = map[int]string{}
		}
		n := len(s.tasks) + 1
		s.tasks[n] = uid
		s.mu.Unlock()
		writeJSON(w, 202, map[string]any{"taskUid": n, "status": "enqueued", "type": "dumpCreation"})
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/tasks/"):
		n, _ := strconv.Atoi(strings.TrimPrefix(p, "/tasks/"))
		s.mu.Lock()
		uid, ok := s.tasks[n]
		s.mu.Unlock()
		if !ok {
			writeJSON(w, 404, map[string]string{"message": "Task `" + strconv.Itoa(n) + "` not found.", "code": "task_not_found"})
			return true
		}
		writeJSON(w, 200, map[string]any{"uid": n, "status": "succeeded", "type": "dumpCreation", "details": map[string]string{"dumpUid": uid}})
	default:
		return false
	}
	return true
}

func writeDump(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gzipTo(f, []byte("stand-in Meilisearch dump: no data\n")); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sortedKeys is used for stable output.
func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

var errUsage = errors.New("usage")
