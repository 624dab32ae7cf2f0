package secrets

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/alt-platform/orchestration/internal/contract"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func need(t *testing.T, needs []Need, name string) Need {
	t.Helper()
	for _, n := range needs {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("the contract names no Secret %s", name)
	return Need{}
}

// The table of docs/contract.md is what the engine writes; every Secret a
// layer's hook verifies, and every Secret Alt's contract says a service
// reads, is in it with that namespace and key.
func TestContractTableCoversHooksAndAltContract(t *testing.T) {
	root := repoRoot(t)
	needs, err := ReadContract(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(needs) < 15 {
		t.Fatalf("read %d Secrets from %s, want every row", len(needs), ContractFile)
	}
	pg := need(t, needs, "postgres-alt-db-user")
	if !slices.Equal(pg.Keys, []string{"username", "password", "database"}) || !slices.Equal(pg.Namespaces, []string{"alt-database", "alt-apps"}) || pg.Layer != "02" || pg.Origin != FromFile {
		t.Errorf("postgres-alt-db-user read as %+v", pg)
	}
	if n := need(t, needs, "meilisearch-search-indexer-key"); n.Origin != InCluster || !slices.Equal(n.Keys, []string{"api-key"}) {
		t.Errorf("meilisearch-search-indexer-key read as %+v", n)
	}
	if n := need(t, needs, "pre-processor-sidecar-oauth2-token"); n.Origin != FromFileOnce {
		t.Errorf("pre-processor-sidecar-oauth2-token read as %+v", n)
	}

	covered := func(where, ns, name string, keys []string) {
		t.Helper()
		for _, n := range needs {
			if n.Name != name {
				continue
			}
			if !slices.Contains(n.Namespaces, ns) {
				t.Errorf("%s verifies %s/%s, but the contract's row for %s names the namespaces %v", where, ns, name, name, n.Namespaces)
			}
			for _, k := range keys {
				k = strings.TrimSuffix(k, "?") // check-secret's KEY?: may be empty
				if !slices.Contains(n.Keys, k) {
					t.Errorf("%s verifies key %s of %s, not in the contract's row", where, k, name)
				}
			}
			return
		}
		t.Errorf("%s verifies Secret %s/%s, which the contract's Secrets table does not list", where, ns, name)
	}
	calls := 0
	call := regexp.MustCompile(`"scripts/check-secret", ((?:"[^"]+"(?:, )?)+)\]`)
	files, _ := filepath.Glob(filepath.Join(root, "skaffold", "*", "skaffold.yaml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(b), -1) {
			args := strings.Split(strings.ReplaceAll(m[1], `"`, ""), ", ")
			covered(f, args[0], args[1], args[2:])
			calls++
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "scripts", "infrastructure-secrets"))
	if err != nil {
		t.Fatal(err)
	}
	eachNS := regexp.MustCompile(`(?m)^each_ns "([^"]+)" (.+)$`)
	for _, m := range eachNS.FindAllStringSubmatch(string(b), -1) {
		f := strings.Fields(m[2])
		for _, ns := range strings.Fields(m[1]) {
			covered("scripts/infrastructure-secrets", ns, f[0], f[1:])
			calls++
		}
	}
	if calls < 20 {
		t.Fatalf("found %d Secret checks in the hooks, want every one", calls)
	}

	c, err := contract.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Services {
		if s.Database != nil {
			n := need(t, needs, s.Database.Secret)
			if !slices.Contains(n.Keys, "password") || !slices.Contains(n.Keys, "username") {
				t.Errorf("%s reads its database role from %s, whose row lacks username or password", s.Release, n.Name)
			}
		}
		for _, f := range s.Secrets {
			name, key, _ := strings.Cut(f.Path, "/")
			if n := need(t, needs, name); !slices.Contains(n.Keys, key) {
				t.Errorf("%s reads %s, not a key of the contract's row", s.Release, f.Path)
			}
		}
	}
}

func TestContractTableErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ name, table, want string }{
		{"two Secrets in a row", "| a, b | k | ns | r (02) | file |", "docs/contract.md:5: column Secret"},
		{"owner without layer", "| a | k | ns | r | file |", "column owner release (layer)"},
		{"unknown origin", "| a | k | ns | r (02) | vault |", "column staging, prod"},
		{"bad namespace", "| a | k | Ns! | r (02) | file |", "column namespaces"},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := "# x\n## Secrets\n| Secret | keys | namespaces | owner release (layer) | staging, prod |\n|---|---|---|---|---|\n" + c.table + "\n"
			_, err := parseContract([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// A file encrypted to a key made here decrypts with that key only, its
// names are readable without it, and no error tells a value.
func TestEncryptDecrypt(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	const secret = "v4lue-that-must-not-leak"
	plain := "# staging\npostgres-credentials:\n  username: postgres\n  password: " + secret + "\n  database: alt\ngrafana-admin:\n  admin-user: admin\n  admin-password: '1234'\n"
	enc, err := Encrypt([]byte(plain), []string{id.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(enc), secret) {
		t.Fatal("the encrypted file holds the value in clear")
	}
	path := filepath.Join(t.TempDir(), "staging.sops.yaml")
	if err := os.WriteFile(path, enc, 0o600); err != nil {
		t.Fatal(err)
	}
	names, err := ReadNames(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names["postgres-credentials"], []string{"username", "password", "database"}) {
		t.Errorf("names without the key: %v", names)
	}

	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no keys.txt of the user
	t.Setenv("SOPS_AGE_KEY", other.String())
	if _, err := Decrypt(path); err == nil || !strings.Contains(err.Error(), "SOPS_AGE_KEY_FILE") {
		t.Fatalf("decrypting with another key: %v, want an error saying where keys come from", err)
	}
	t.Setenv("SOPS_AGE_KEY", id.String())
	src, err := Decrypt(path)
	if err != nil {
		t.Fatal(err)
	}
	n := Need{Name: "postgres-credentials", Keys: []string{"username", "password", "database"}}
	data, ok := src.Data(n)
	if !ok || string(data["password"]) != secret {
		t.Fatalf("decrypted data of %s: ok %v", n.Name, ok)
	}
	if _, ok := src.Data(Need{Name: "postgres-credentials", Keys: []string{"password", "port"}}); ok {
		t.Error("a key the file lacks was found")
	}
	if src.Hash(data) != src.Hash(map[string][]byte{"database": []byte("alt"), "password": []byte(secret), "username": []byte("postgres")}) {
		t.Error("equal data, different hashes")
	}
	if src.Hash(data) == src.Hash(map[string][]byte{"database": []byte("alt"), "password": []byte(secret + "x"), "username": []byte("postgres")}) {
		t.Error("different data, equal hashes")
	}

	lacks, extra := Compare([]Need{n, {Name: "grafana-admin", Keys: []string{"admin-user", "admin-password", "url"}}, {Name: "kratos-secrets", Keys: []string{"cookie"}}}, src.Names())
	if got := []string{lacks[0].String(), lacks[1].String()}; len(lacks) != 2 || got[0] != "grafana-admin (url)" || got[1] != "kratos-secrets" || len(extra) != 0 {
		t.Errorf("lacks %v extra %v", lacks, extra)
	}

	// Changed without sops: the MAC no longer matches.
	tampered := strings.Replace(string(enc), "database: ENC[", "database: ENC[x", 1)
	if err := os.WriteFile(path, []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(path); err == nil {
		t.Error("a tampered file decrypted")
	} else if strings.Contains(err.Error(), secret) {
		t.Error("the error tells the value")
	}
	// A plain file is refused.
	if err := os.WriteFile(path, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(path); err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "not encrypted") {
		t.Errorf("a plain file: %v", err)
	}
}
