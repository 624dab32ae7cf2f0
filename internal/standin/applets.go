package standin

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"
)

// applets are the client tools a stand-in image answers to by argv[0]. Each
// reaches the server it names over TCP (so a wrong host, port or network
// policy fails as the real tool would) and prints what a script expects.
var applets map[string]func(Proc) int

func init() {
	applets = map[string]func(Proc) int{
		"pg_isready":        pgIsReady,
		"psql":              psql,
		"pg_dump":           pgDump,
		"pg_restore":        pgRestore,
		"createdb":          pgSimple,
		"dropdb":            pgSimple,
		"clickhouse-client": clickhouseClient,
		"curl":              curl,
		"jq":                jq,
	}
}

// flags parses GNU-style options: --name=value, --name value, -x value,
// -xyz (bool clusters). valued lists the options that take a value.
type flags struct {
	vals map[string][]string
	pos  []string
}

func parseFlags(args []string, valued ...string) flags {
	takes := map[string]bool{}
	for _, v := range valued {
		takes[v] = true
	}
	f := flags{vals: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, val, has := strings.Cut(a[2:], "=")
			if !has && takes["--"+name] && i+1 < len(args) {
				i++
				val, has = args[i], true
			}
			if !has {
				val = "true"
			}
			f.vals["--"+name] = append(f.vals["--"+name], val)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				name := "-" + a[j:j+1]
				if takes[name] {
					val := a[j+1:]
					if val == "" && i+1 < len(args) {
						i++
						val = args[i]
					}
					f.vals[name] = append(f.vals[name], val)
					break
				}
				f.vals[name] = append(f.vals[name], "true")
			}
		default:
			f.pos = append(f.pos, a)
		}
	}
	return f
}

func (f flags) get(names ...string) string {
	for _, n := range names {
		if v := f.vals[n]; len(v) > 0 {
			return v[len(v)-1]
		}
	}
	return ""
}

func (f flags) all(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, f.vals[n]...)
	}
	return out
}

func (f flags) has(names ...string) bool { return f.get(names...) != "" }

var pgValued = []string{"-h", "--host", "-p", "--port", "-U", "--username", "-d", "--dbname", "-t", "--timeout",
	"-f", "--file", "-c", "--command", "-F", "--format", "-v", "--set"}

// pgAddr is where a PostgreSQL client connects: flags, then PGHOST/PGPORT.
func pgAddr(p Proc, f flags) string {
	host := f.get("-h", "--host")
	if host == "" {
		host = p.Getenv("PGHOST")
	}
	if host == "" {
		host = "localhost"
	}
	port := f.get("-p", "--port")
	if port == "" {
		port = p.Getenv("PGPORT")
	}
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(host, port)
}

func reach(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	return c.Close()
}

func pgIsReady(p Proc) int {
	f := parseFlags(p.Args[1:], pgValued...)
	addr := pgAddr(p, f)
	timeout := 3 * time.Second
	if t := f.get("-t", "--timeout"); t != "" {
		if d, err := time.ParseDuration(t + "s"); err == nil && d > 0 {
			timeout = d
		}
	}
	if err := reach(addr, timeout); err != nil {
		fmt.Fprintf(p.Stdout, "%s - no response\n", addr)
		return 2
	}
	fmt.Fprintf(p.Stdout, "%s - accepting connections\n", addr)
	return 0
}

func pgConnect(p Proc, f flags, tool string) bool {
	addr := pgAddr(p, f)
	if err := reach(addr, 5*time.Second); err != nil {
		fmt.Fprintf(p.Stderr, "%s: error: connection to server at %s failed: %v\n", tool, addr, err)
		return false
	}
	return true
}

// psql runs a file (read, so a missing one fails) or a command; a count
// query answers 0 (a stand-in database holds no tables).
func psql(p Proc) int {
	f := parseFlags(p.Args[1:], pgValued...)
	if !pgConnect(p, f, "psql") {
		return 2
	}
	for _, file := range f.all("-f", "--file") {
		if _, err := os.ReadFile(file); err != nil {
			fmt.Fprintf(p.Stderr, "psql: error: %s: %v\n", file, err)
			return 1
		}
	}
	if f.has("-f", "--file") {
		return 0
	}
	if c := f.get("-c", "--command"); c != "" {
		if strings.Contains(strings.ToLower(c), "count(") {
			fmt.Fprintln(p.Stdout, "0")
		}
		return 0
	}
	io.Copy(io.Discard, p.Stdin)
	return 0
}

const dumpMagic = "PGDMP stand-in\n"

func pgDump(p Proc) int {
	f := parseFlags(p.Args[1:], pgValued...)
	if !pgConnect(p, f, "pg_dump") {
		return 1
	}
	out := p.Stdout
	if file := f.get("-f", "--file"); file != "" {
		fh, err := os.Create(file)
		if err != nil {
			fmt.Fprintf(p.Stderr, "pg_dump: error: could not open output file %q: %v\n", file, err)
			return 1
		}
		defer fh.Close()
		out = fh
	}
	io.WriteString(out, dumpMagic)
	return 0
}

func pgRestore(p Proc) int {
	f := parseFlags(p.Args[1:], pgValued...)
	if len(f.pos) != 1 {
		fmt.Fprintln(p.Stderr, "pg_restore: error: one input file expected")
		return 1
	}
	b, err := os.ReadFile(f.pos[0])
	if err != nil || !bytes.HasPrefix(b, []byte("PGDMP")) {
		fmt.Fprintf(p.Stderr, "pg_restore: error: input file %s does not appear to be a valid archive\n", f.pos[0])
		return 1
	}
	if f.has("-l", "--list") {
		fmt.Fprintln(p.Stdout, ";\n; Archive created by a stand-in pg_dump (no data)\n;")
		return 0
	}
	if !pgConnect(p, f, "pg_restore") {
		return 1
	}
	return 0
}

func pgSimple(p Proc) int {
	f := parseFlags(p.Args[1:], pgValued...)
	if !pgConnect(p, f, p.Args[0]) {
		return 1
	}
	return 0
}

var xmlField = regexp.MustCompile(`<(host|port)>\s*([^<\s]+)\s*</`)

// clickhouseClient reaches the server named by --host/--port or its
// --config-file and answers every query with no rows.
func clickhouseClient(p Proc) int {
	f := parseFlags(p.Args[1:], "--host", "-h", "--port", "--config-file", "-C", "--query", "-q", "--user", "-u", "--password", "--database", "-d", "--format")
	host, port := f.get("--host", "-h"), f.get("--port")
	if cf := f.get("--config-file", "-C"); cf != "" {
		b, err := os.ReadFile(cf)
		if err != nil {
			fmt.Fprintf(p.Stderr, "clickhouse-client: %v\n", err)
			return 1
		}
		for _, m := range xmlField.FindAllStringSubmatch(string(b), -1) {
			if m[1] == "host" && host == "" {
				host = m[2]
			}
			if m[1] == "port" && port == "" {
				port = m[2]
			}
		}
	}
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "9000"
	}
	addr := net.JoinHostPort(host, port)
	if err := reach(addr, 5*time.Second); err != nil {
		fmt.Fprintf(p.Stderr, "clickhouse-client: Code: 210. DB::NetException: Connection refused (%s): %v\n", addr, err)
		return 210
	}
	if !f.has("--query", "-q") {
		io.Copy(io.Discard, p.Stdin)
	}
	return 0
}

// curl: the options the charts' scripts use (-f -s -S -o -w -X -H --data
// --cacert); -w knows %{http_code}.
func curl(p Proc) int {
	f := parseFlags(p.Args[1:], "-o", "--output", "-w", "--write-out", "-X", "--request", "-H", "--header", "-d", "--data", "--data-raw", "--cacert", "-m", "--max-time")
	if len(f.pos) != 1 {
		fmt.Fprintln(p.Stderr, "curl: (2) one URL expected")
		return 2
	}
	silent := f.has("-s", "--silent")
	showErr := f.has("-S", "--show-error")
	fail := f.has("-f", "--fail")
	method := f.get("-X", "--request")
	data := f.get("-d", "--data", "--data-raw")
	if method == "" {
		method = "GET"
		if f.has("-d", "--data", "--data-raw") {
			method = "POST"
		}
	}
	var body io.Reader
	if f.has("-d", "--data", "--data-raw") {
		body = strings.NewReader(data)
	}
	req, err := http.NewRequestWithContext(p.Ctx, method, f.pos[0], body)
	if err != nil {
		fmt.Fprintf(p.Stderr, "curl: (3) %v\n", err)
		return 3
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, h := range f.all("-H", "--header") {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	tr := &http.Transport{}
	if ca := f.get("--cacert"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			fmt.Fprintf(p.Stderr, "curl: (77) error setting certificate file: %s\n", ca)
			return 77
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	timeout := 60 * time.Second
	client := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := client.Do(req)
	if err != nil {
		if !silent || showErr {
			fmt.Fprintf(p.Stderr, "curl: (7) %v\n", err)
		}
		return 7
	}
	defer resp.Body.Close()
	if fail && resp.StatusCode >= 400 {
		if !silent || showErr {
			fmt.Fprintf(p.Stderr, "curl: (22) The requested URL returned error: %d\n", resp.StatusCode)
		}
		return 22
	}
	out := p.Stdout
	if o := f.get("-o", "--output"); o != "" {
		fh, err := os.Create(o)
		if err != nil {
			fmt.Fprintf(p.Stderr, "curl: (23) %v\n", err)
			return 23
		}
		defer fh.Close()
		out = fh
	}
	io.Copy(out, resp.Body)
	if w := f.get("-w", "--write-out"); w != "" {
		fmt.Fprint(p.Stdout, strings.ReplaceAll(w, "%{http_code}", fmt.Sprintf("%03d", resp.StatusCode)))
	}
	return 0
}

// jq: a path filter (.a.b, .) with -e, -r, -c; what the charts' scripts use.
func jq(p Proc) int {
	f := parseFlags(p.Args[1:])
	if len(f.pos) < 1 {
		fmt.Fprintln(p.Stderr, "jq: a filter is required")
		return 2
	}
	filter := f.pos[0]
	raw := f.has("-r", "--raw-output")
	exit := f.has("-e", "--exit-status")
	compact := f.has("-c", "--compact-output")
	var in []byte
	var err error
	if len(f.pos) > 1 {
		in, err = os.ReadFile(f.pos[1])
	} else {
		in, err = io.ReadAll(p.Stdin)
	}
	if err != nil {
		fmt.Fprintf(p.Stderr, "jq: %v\n", err)
		return 2
	}
	var v any
	if err := json.Unmarshal(in, &v); err != nil {
		fmt.Fprintf(p.Stderr, "jq: error: cannot parse input: %v\n", err)
		return 2
	}
	if filter != "." {
		if !strings.HasPrefix(filter, ".") {
			fmt.Fprintf(p.Stderr, "jq: the stand-in jq knows path filters (.a.b) only, not %q\n", filter)
			return 3
		}
		for _, k := range strings.Split(strings.TrimPrefix(filter, "."), ".") {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
	}
	if s, ok := v.(string); ok && raw {
		fmt.Fprintln(p.Stdout, s)
	} else {
		var b []byte
		if compact {
			b, _ = json.Marshal(v)
		} else {
			b, _ = json.MarshalIndent(v, "", "  ")
		}
		fmt.Fprintln(p.Stdout, string(b))
	}
	if exit && (v == nil || v == false) {
		return 1
	}
	return 0
}

func gzipTo(w io.Writer, b []byte) error {
	z := gzip.NewWriter(w)
	if _, err := z.Write(b); err != nil {
		return err
	}
	return z.Close()
}
