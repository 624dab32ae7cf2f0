package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/alt-platform/orchestration/internal/charts"
	"github.com/alt-platform/orchestration/internal/stack"
)

// digestVersion changes when what the digest covers changes, so that every
// layer is redeployed once after such an upgrade.
const digestVersion = "3" // 2: the scripts hooks call; 3: the charts' local dependencies (charts/common)

// Inputs are everything that determines what a layer deploys, each named
// input with the hash of its content. Two runs with equal inputs render the
// same objects.
type Inputs map[string]string

// Digest is the hash of all inputs.
func (in Inputs) Digest() string {
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, in[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Changed names the inputs that differ from old: changed, added or gone.
func (in Inputs) Changed(old Inputs) []string {
	var diff []string
	for k, v := range in {
		if o, ok := old[k]; !ok {
			diff = append(diff, k+" (new)")
		} else if o != v {
			diff = append(diff, k)
		}
	}
	for k := range old {
		if _, ok := in[k]; !ok {
			diff = append(diff, k+" (gone)")
		}
	}
	sort.Strings(diff)
	return diff
}

// layerInputs collects the inputs of one layer view: its Skaffold file, the
// files of every local chart (with its local dependencies, charts/common:
// charts.Files; not the archives vendored from them) and values file, the scripts its hooks call
// (with the library every script sources), remote chart pins, the image
// tags it receives, the profile, the activated conditional profiles and the
// tool versions.
func layerInputs(repo string, v *stack.View, images map[string]string, env map[string]string, toolVersions map[string]string) (Inputs, error) {
	in := Inputs{
		"engine":  digestVersion,
		"profile": v.Profile,
	}
	add := func(rel string) error {
		b, err := os.ReadFile(filepath.Join(repo, rel))
		if err != nil {
			return err
		}
		in["file:"+rel] = hashBytes(b)
		return nil
	}
	if err := add(v.Layer.File); err != nil {
		return nil, err
	}
	addTree := func(dir string) error {
		return filepath.WalkDir(filepath.Join(repo, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(repo, p)
			return add(rel)
		})
	}
	for _, r := range v.Releases {
		if r.Remote {
			in["chart:"+r.Name] = r.Chart + "@" + r.Version
		} else {
			files, err := charts.Files(repo, r.Chart)
			if err != nil {
				return nil, fmt.Errorf("chart %s of release %s: %w", r.Chart, r.Name, err)
			}
			for _, f := range files {
				if err := add(f); err != nil {
					return nil, err
				}
			}
		}
		for _, f := range r.ValuesFiles {
			if err := add(f); err != nil {
				return nil, err
			}
		}
	}
	lib := false
	for _, h := range append(slices.Clone(v.Before), v.After...) {
		script := h.Script()
		if script == "" {
			continue
		}
		if err := add(script); err != nil {
			return nil, fmt.Errorf("%s: a hook calls %s: %w", v.Layer.File, script, err)
		}
		if !lib {
			lib = true
			if err := addTree(stack.ScriptLib); err != nil {
				return nil, fmt.Errorf("%s, sourced by every script: %w", stack.ScriptLib, err)
			}
		}
	}
	for _, a := range v.Artifacts {
		in["image:"+a.Image] = images[a.Image]
	}
	for k, val := range env {
		in["env:"+k] = val
	}
	for k, val := range toolVersions {
		in["tool:"+k] = val
	}
	return in, nil
}

func hashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])[:16]
}

// Record is what the cluster keeps about a layer's last verified deploy.
type Record struct {
	Digest  string `json:"digest"`
	Profile string `json:"profile"`
	Time    string `json:"time"`
	Inputs  Inputs `json:"inputs"`
	// Revisions are the Helm revision of each release ("namespace/name")
	// that this deploy verified: what `rollback` returns to.
	Revisions map[string]int `json:"revisions,omitempty"`
	// RolledBackTo is the time of the deploy a rollback returned to.
	RolledBackTo string `json:"rolledBackTo,omitempty"`
	// Stale says why the layer's objects may differ from what the inputs
	// above deploy (watch rebuilt and redeployed some of its services):
	// the next run deploys the layer whatever its digest.
	Stale string `json:"stale,omitempty"`
}

// historyMax is how many verified deploys of a layer are remembered.
const historyMax = 5

// historyKey is the state ConfigMap key of a layer's verified deploys.
func historyKey(layer string) string { return layer + historySuffix }

const historySuffix = ".history"

// Describe is one line about a recorded deploy.
func (r Record) Describe() string {
	s := fmt.Sprintf("%s digest %s", r.Time, r.Digest)
	if r.RolledBackTo != "" {
		s += " (a rollback to " + r.RolledBackTo + ")"
	}
	return s
}

func (r Record) encode() string {
	b, _ := json.Marshal(r)
	return string(b)
}

func decodeRecord(s string) (Record, error) {
	var r Record
	err := json.Unmarshal([]byte(s), &r)
	return r, err
}

// shortList joins at most n names, saying how many more there are.
func shortList(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
