package secrets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	sopsconfig "github.com/getsops/sops/v3/config"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
)

// Dir holds one SOPS file per environment.
const Dir = "secrets"

// File is the environment's file, relative to the repository root.
func File(profile string) string { return filepath.Join(Dir, profile+".sops.yaml") }

// KeyHelp says where the age key comes from, for messages and the README.
const KeyHelp = "the age key is read as sops reads it: SOPS_AGE_KEY (the key itself), SOPS_AGE_KEY_FILE (a file of keys), SOPS_AGE_KEY_CMD (a command printing them), else ~/.config/sops/age/keys.txt"

// Names is what an encrypted file holds without decrypting it: SOPS
// leaves the keys of a YAML file readable, so the Secret and key names are
// known to anyone, the values to the age key's holder only.
type Names map[string][]string

// Source is the decrypted content of one environment's file: Secret name
// → key → value. It lives in memory only.
type Source struct {
	File string
	data map[string]map[string]string
	mac  []byte // keys the hashes: the file's data key
}

// ReadNames reads the Secret and key names of an encrypted file without
// its key.
func ReadNames(path string) (Names, error) {
	tree, err := load(path)
	if err != nil {
		return nil, err
	}
	names := Names{}
	err = walk(path, tree, func(secret, key string, _ any) error {
		names[secret] = append(names[secret], key)
		return nil
	})
	return names, err
}

func load(path string) (sops.Tree, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return sops.Tree{}, err
	}
	tree, err := sopsyaml.NewStore(&sopsconfig.YAMLStoreConfig{}).LoadEncryptedFile(b)
	if err != nil {
		if errors.Is(err, sops.MetadataNotFound) {
			return sops.Tree{}, fmt.Errorf("%s: not encrypted by sops (no sops metadata); encrypt it: sops encrypt -i %s", path, path)
		}
		return sops.Tree{}, fmt.Errorf("%s: %w", path, err)
	}
	return tree, nil
}

// walk calls f for every value of the tree: top-level keys are Secrets,
// their keys the Secret's keys. Anything else is an error naming the place.
func walk(path string, tree sops.Tree, f func(secret, key string, v any) error) error {
	if len(tree.Branches) != 1 {
		return fmt.Errorf("%s: want one YAML document, found %d", path, len(tree.Branches))
	}
	for _, it := range tree.Branches[0] {
		if _, ok := it.Key.(sops.Comment); ok {
			continue
		}
		secret := fmt.Sprint(it.Key)
		inner, ok := it.Value.(sops.TreeBranch)
		if !ok {
			return fmt.Errorf("%s: %s: want a mapping of the Secret's keys to their values", path, secret)
		}
		for _, kv := range inner {
			if _, ok := kv.Key.(sops.Comment); ok {
				continue
			}
			if err := f(secret, fmt.Sprint(kv.Key), kv.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// Decrypt reads and decrypts the file at path in memory, with the age
// identities sops finds (KeyHelp). Errors name the file and what failed,
// never a value.
func Decrypt(path string) (*Source, error) {
	tree, err := load(path)
	if err != nil {
		return nil, err
	}
	key, err := tree.Metadata.GetDataKey()
	if err != nil {
		return nil, fmt.Errorf("%s: cannot decrypt its data key with any age identity found (%s): %w", path, KeyHelp, err)
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		return nil, fmt.Errorf("%s: decrypting its values failed (wrong key or a damaged file)", path)
	}
	orig, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || orig != mac {
		return nil, fmt.Errorf("%s: its message authentication code does not match its content: the file was changed without sops; edit it with `sops edit %s`", path, path)
	}
	s := &Source{File: path, data: map[string]map[string]string{}, mac: key}
	err = walk(path, tree, func(secret, k string, v any) error {
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: %s.%s: not a string (a %T); quote the value", path, secret, k, v)
		}
		if s.data[secret] == nil {
			s.data[secret] = map[string]string{}
		}
		s.data[secret][k] = str
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Names are the Secret and key names of the decrypted file.
func (s *Source) Names() Names {
	n := Names{}
	for secret, kv := range s.data {
		for k := range kv {
			n[secret] = append(n[secret], k)
		}
	}
	return n
}

// Data is the data of the Secret name, exactly the keys need lists; ok
// false when the file lacks one of them.
func (s *Source) Data(n Need) (map[string][]byte, bool) {
	kv := s.data[n.Name]
	out := map[string][]byte{}
	for _, k := range n.Keys {
		v, ok := kv[k]
		if !ok {
			return nil, false
		}
		out[k] = []byte(v)
	}
	return out, true
}

// Hash is a keyed hash of a Secret's data (its keys and values): equal
// data, equal hash. It is keyed with the file's data key, so that a hash
// kept in the cluster tells nothing about a value to anyone without the
// age key. Only 16 hex digits are kept.
func (s *Source) Hash(data map[string][]byte) string {
	h := hmac.New(sha256.New, s.mac)
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Lack is one name the contract needs and a file does not hold.
type Lack struct {
	Secret string
	Keys   []string // empty: the whole Secret is missing
}

func (l Lack) String() string {
	if len(l.Keys) == 0 {
		return l.Secret
	}
	return l.Secret + " (" + strings.Join(l.Keys, ", ") + ")"
}

// Compare says what the needs lack in names, and which of names' Secrets
// no need names (extra).
func Compare(needs []Need, names Names) (lacks []Lack, extra []string) {
	known := map[string]bool{}
	for _, n := range needs {
		known[n.Name] = true
		have, ok := names[n.Name]
		if !ok {
			lacks = append(lacks, Lack{Secret: n.Name})
			continue
		}
		var miss []string
		for _, k := range n.Keys {
			if !slices.Contains(have, k) {
				miss = append(miss, k)
			}
		}
		if len(miss) > 0 {
			lacks = append(lacks, Lack{n.Name, miss})
		}
	}
	for s := range names {
		if !known[s] {
			extra = append(extra, s)
		}
	}
	sort.Strings(extra)
	return lacks, extra
}

// LackError is the error of a file that lacks names the run needs.
func LackError(file string, lacks []Lack) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s lacks what the layers of this run need (docs/contract.md, Secrets):", file)
	for _, l := range lacks {
		fmt.Fprintf(&b, "\n  - %s", l)
	}
	fmt.Fprintf(&b, "\nadd them with `sops edit %s`; `go run mage.go secrets:check` lists every environment", file)
	return errors.New(b.String())
}

// Version is the sops version written into files this package encrypts.
const Version = "3.13.3"

// Encrypt encrypts a plain YAML document to the age recipients as sops
// does (every value encrypted, keys readable, a MAC over the values). The
// tests use it with a key they make; users use the sops CLI.
func Encrypt(plain []byte, recipients []string) ([]byte, error) {
	store := sopsyaml.NewStore(&sopsconfig.YAMLStoreConfig{})
	branches, err := store.LoadPlainFile(plain)
	if err != nil {
		return nil, err
	}
	var group sops.KeyGroup
	for _, r := range recipients {
		mk, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			return nil, err
		}
		group = append(group, mk)
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups: []sops.KeyGroup{group}, UnencryptedSuffix: sops.DefaultUnencryptedSuffix, Version: Version}}
	key, errs := tree.GenerateDataKey()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(key, cipher)
	if err != nil {
		return nil, err
	}
	tree.Metadata.LastModified = time.Now().UTC()
	if tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, key, tree.Metadata.LastModified.Format(time.RFC3339)); err != nil {
		return nil, err
	}
	return store.EmitEncryptedFile(tree)
}
