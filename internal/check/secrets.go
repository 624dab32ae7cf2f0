package check

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/alt-platform/orchestration/internal/charts"
)

// Secrets checks that no secret value is committed:
//
//   - every YAML file under charts/ (outside templates/) and skaffold/ —
//     chart defaults, values files, Skaffold configs — is scanned for keys
//     that name a secret (password, secret, token, key, ...) holding a
//     literal non-empty string that is not a reference: not the name of a
//     Secret or of a Secret key the platform uses, not a template, an
//     environment reference or a file path; and for URLs with an embedded
//     password (scheme://user:password@host);
//   - every rendered container env var that names a secret has no literal
//     value (it takes it from a Secret);
//   - every rendered ConfigMap's embedded YAML/JSON documents and values
//     are scanned the same way;
//   - every rendered Secret is generated, not written: its template calls
//     `lookup` (kept across redeploys) and, when it has a non-empty
//     secret-looking key, a random generator (randAlphaNum, ...).
//
// repo is the repository root; objs the rendered objects (their Secret
// names and keys are the references values may name).
func Secrets(repo string, objs []*Object) error {
	var ps Problems
	refs := secretRefs(objs)

	var files []string
	for _, root := range []string{"charts", "skaffold"} {
		filepath.WalkDir(filepath.Join(repo, root), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if d.Name() == "templates" {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") {
				files = append(files, p)
			}
			return nil
		})
	}
	for _, f := range files {
		rel, _ := filepath.Rel(repo, f)
		b, err := os.ReadFile(f)
		if err != nil {
			ps = append(ps, Problem{File: rel, Msg: err.Error()})
			continue
		}
		ps = append(ps, scanYAML(rel, "", b, refs)...)
	}

	order, groups := byProfile(objs)
	generated := map[string]string{} // template file → its text
	for _, p := range order {
		for _, o := range groups[p] {
			switch t := typed(o).(type) {
			case *corev1.Secret:
				ps = append(ps, secretGenerated(repo, o, t, generated)...)
			case *corev1.ConfigMap:
				for _, k := range sortedMapKeys(t.Data) {
					for _, pr := range scanYAML(o.Source, o.Desc()+" data."+k, []byte(t.Data[k]), refs) {
						pr.Profiles = profiles(o.Profile)
						ps = append(ps, pr)
					}
				}
			}
		}
		for _, w := range workloads(groups[p]) {
			for _, c := range w.containers() {
				for _, e := range c.c.Env {
					if e.ValueFrom != nil || e.Value == "" {
						continue
					}
					if why := literalSecret(e.Name, e.Value, nil, refs); why != "" {
						ps = append(ps, w.obj.problem("%s.env[%s]: %s; take it from a Secret (valueFrom.secretKeyRef)", c.path, e.Name, why))
					}
				}
			}
		}
	}
	return ps.Err()
}

// refSet is what a value may legitimately name: Secret names and keys.
type refSet struct{ names, keys map[string]bool }

func secretRefs(objs []*Object) refSet {
	r := refSet{names: map[string]bool{}, keys: map[string]bool{}}
	for _, o := range objs {
		if s, ok := typed(o).(*corev1.Secret); ok {
			r.names[s.Name] = true
			for k := range s.Data {
				r.keys[k] = true
			}
			for k := range s.StringData {
				r.keys[k] = true
			}
		}
	}
	for _, w := range workloads(objs) {
		for _, ref := range podRefs(w) {
			if ref.kind == "Secret" {
				r.names[ref.name] = true
				if ref.key != "" {
					r.keys[ref.key] = true
				}
			}
		}
	}
	return r
}

var (
	wordSplit      = regexp.MustCompile(`[A-Z]?[a-z0-9]+|[A-Z]+(?:[^a-z]|$)`)
	secretWords    = []string{"password", "passwd", "pwd", "passphrase", "secret", "token", "key", "apikey", "credential", "credentials"}
	urlCredentials = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@`)
	envReference   = regexp.MustCompile(`^\$\(?\{?[A-Za-z_][A-Za-z0-9_]*\}?\)?$`)
	referenceKeys  = []string{"name", "secret", "secretname", "configmap", "configmapname", "secretref", "configmapref"}
)

// words splits a key into lower-case words: DB_PASSWORD → db, password;
// masterKey → master, key.
func words(key string) []string {
	var ws []string
	for _, part := range strings.FieldsFunc(key, func(r rune) bool { return r == '_' || r == '-' || r == '.' || r == ' ' }) {
		for _, w := range wordSplit.FindAllString(part, -1) {
			ws = append(ws, strings.ToLower(strings.TrimRight(w, "0123456789")))
		}
	}
	return ws
}

// literalSecret says why value under key is a committed secret, or "".
// siblings are the other keys of the mapping the key is in.
func literalSecret(key, value string, siblings []string, refs refSet) string {
	v := strings.TrimSpace(value)
	if m := urlCredentials.FindStringSubmatch(v); m != nil && !isReference(m[1]) {
		return "a URL with an embedded password"
	}
	ws := words(key)
	if len(ws) == 0 || !slices.Contains(secretWords, ws[len(ws)-1]) {
		return ""
	}
	if ws[0] == "existing" { // existingSecret: the name of a Secret
		return ""
	}
	if ws[len(ws)-1] == "key" && len(ws) == 1 {
		for _, s := range siblings {
			if slices.Contains(referenceKeys, strings.ToLower(s)) {
				return "" // {secret: x, key: y}: y names a key of x
			}
		}
	}
	if v == "" || isReference(v) || refs.names[v] || refs.keys[v] {
		return ""
	}
	return fmt.Sprintf("key %q holds a literal value", key)
}

// isReference reports whether a value points somewhere rather than being
// a secret: a template, an environment reference, a file path.
func isReference(v string) bool {
	return strings.Contains(v, "{{") || strings.Contains(v, "${") || strings.Contains(v, "$(") || envReference.MatchString(v) ||
		strings.HasPrefix(v, "/") || strings.HasPrefix(v, "file://") || strings.HasPrefix(v, "env://")
}

// scanYAML walks every document of b and reports literal secrets. object
// names the place for problems (empty for a file).
func scanYAML(file, object string, b []byte, refs refSet) Problems {
	var ps Problems
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			break // end, or not YAML (a ConfigMap holding a script): nothing to scan
		}
		walkYAML(&n, "", func(path, key string, v *yaml.Node, siblings []string) {
			if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
				return
			}
			if why := literalSecret(key, v.Value, siblings, refs); why != "" {
				where := object
				if where == "" {
					where = fmt.Sprintf("line %d", v.Line)
				} else {
					where = fmt.Sprintf("%s (line %d)", where, v.Line)
				}
				ps = append(ps, Problem{File: file, Where: where, Msg: fmt.Sprintf("%s: %s; no secret value is committed (dev generates it, staging/prod provide it)", path, why)})
			}
		})
	}
	return ps
}

// walkYAML calls f for every mapping value (and every item of a sequence
// under a key, with that key).
func walkYAML(n *yaml.Node, path string, f func(path, key string, v *yaml.Node, siblings []string)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkYAML(c, path, f)
		}
	case yaml.MappingNode:
		var keys []string
		var name, value *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			keys = append(keys, n.Content[i].Value)
			switch n.Content[i].Value {
			case "name":
				name = n.Content[i+1]
			case "value":
				value = n.Content[i+1]
			}
		}
		// An env-style {name: DB_PASSWORD, value: ...}: the name is the key.
		if name != nil && value != nil && name.Kind == yaml.ScalarNode && value.Kind == yaml.ScalarNode {
			f(path, name.Value, value, nil)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			p := join(path, k)
			if v.Kind == yaml.SequenceNode {
				for j, item := range v.Content {
					if item.Kind == yaml.ScalarNode {
						f(fmt.Sprintf("%s[%d]", p, j), k, item, keys)
					} else {
						walkYAML(item, fmt.Sprintf("%s[%d]", p, j), f)
					}
				}
				continue
			}
			if v.Kind == yaml.ScalarNode {
				f(p, k, v, keys)
				continue
			}
			walkYAML(v, p, f)
		}
	case yaml.SequenceNode:
		for j, item := range n.Content {
			walkYAML(item, fmt.Sprintf("%s[%d]", path, j), f)
		}
	case yaml.AliasNode:
		// Anchored content is scanned where it is defined.
	}
}

var randomFuncs = regexp.MustCompile(`\b(randAlphaNum|randAlpha|randAscii|randNumeric|randBytes|uuidv4|genPrivateKey|genCA|genSelfSignedCert|genSignedCert)\b`)

var (
	includeRe = regexp.MustCompile(`include\s+"([^"]+)"`)
	defineRe  = regexp.MustCompile(`\{\{-?\s*define\s+"([^"]+)"`)
)

// withIncludes is a template's text followed by the bodies of the named
// templates it includes (from the chart's templates/*.tpl), recursively,
// so that a Secret generated by a helper is seen as generated.
func withIncludes(repo, chart, text string) string {
	defs := map[string]string{}
	tpls, _ := filepath.Glob(filepath.Join(repo, chart, "templates", "*.tpl"))
	// The helpers of its local dependencies too (charts/common's Secret
	// generation).
	deps, _ := charts.Deps(repo, chart)
	for _, d := range deps {
		lib, _ := filepath.Glob(filepath.Join(repo, d.Path, "templates", "*.tpl"))
		tpls = append(tpls, lib...)
	}
	for _, f := range tpls {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// A define's body runs to the next define (nested ends make a
		// regular expression for its own end unreliable).
		t := string(b)
		locs := defineRe.FindAllStringSubmatchIndex(t, -1)
		for i, l := range locs {
			end := len(t)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			defs[t[l[2]:l[3]]] = t[l[1]:end]
		}
	}
	seen := map[string]bool{}
	var b strings.Builder
	b.WriteString(text)
	var add func(string)
	add = func(t string) {
		for _, m := range includeRe.FindAllStringSubmatch(t, -1) {
			if body, ok := defs[m[1]]; ok && !seen[m[1]] {
				seen[m[1]] = true
				b.WriteString("\n")
				b.WriteString(body)
				add(body)
			}
		}
	}
	add(text)
	return b.String()
}

// secretGenerated checks that a rendered Secret comes from generation.
func secretGenerated(repo string, o *Object, s *corev1.Secret, cache map[string]string) Problems {
	if s.Type == corev1.SecretTypeServiceAccountToken {
		return nil
	}
	text, ok := cache[o.Source]
	if !ok {
		b, err := os.ReadFile(filepath.Join(repo, o.Source))
		if err != nil {
			return Problems{o.problem("cannot read its template: %v", err)}
		}
		text = withIncludes(repo, o.Chart, string(b))
		cache[o.Source] = text
	}
	var ps Problems
	if !strings.Contains(text, "lookup") {
		ps = append(ps, o.problem("the template does not `lookup` the existing Secret: a generated value would change on every deploy (generate once per cluster and keep it)"))
	}
	var secretKeys []string
	for k, v := range s.Data {
		if len(v) > 0 && isSecretKey(k) {
			secretKeys = append(secretKeys, k)
		}
	}
	for k, v := range s.StringData {
		if v != "" && isSecretKey(k) {
			secretKeys = append(secretKeys, k)
		}
	}
	if len(secretKeys) > 0 && !randomFuncs.MatchString(text) {
		slices.Sort(secretKeys)
		ps = append(ps, o.problem("data %s: not generated (the template calls no randAlphaNum/randBytes/genPrivateKey...): a literal secret value", strings.Join(secretKeys, ", ")))
	}
	return ps
}

func isSecretKey(k string) bool {
	ws := words(k)
	if len(ws) == 0 {
		return false
	}
	last := ws[len(ws)-1]
	return slices.Contains(secretWords, last) || last == "cookie" || last == "cipher" || last == "pem"
}
