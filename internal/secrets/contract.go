// Package secrets provides the Secrets of staging and prod from one
// encrypted file per environment (secrets/<profile>.sops.yaml, encrypted
// with SOPS to the age recipients of .sops.yaml), read and decrypted in
// memory with the sops library. It knows which Secrets each layer needs,
// in which namespaces and with which keys, from the Secrets table of
// docs/contract.md. No value it holds is ever printed, written to a file,
// passed as an argument or put in an error: a value is only compared by
// hash and sent to the API server.
package secrets

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// ContractFile holds the Secrets table, relative to the repository root.
const ContractFile = "docs/contract.md"

// tableHeading starts the section whose first table is read.
const tableHeading = "## Secrets"

// Origin is where a Secret's values come from in staging and prod.
type Origin string

const (
	// FromFile: the engine writes it from the environment's SOPS file and
	// keeps every copy equal to it.
	FromFile Origin = "file"
	// FromFileOnce: created from the file when missing, never overwritten
	// (a workload updates it in the cluster), so not compared.
	FromFileOnce Origin = "file, once"
	// InCluster: made in the cluster by a chart or a Job of the platform.
	InCluster Origin = "cluster"
)

// Need is one Secret of the contract.
type Need struct {
	Name       string
	Keys       []string
	Namespaces []string
	// Release and Layer own it: Layer is the two-digit prefix of the
	// owning layer's folder (02 for skaffold/02-infrastructure).
	Release string
	Layer   string
	Origin  Origin
	Line    int // in ContractFile
}

// FromSource says whether the environment's file provides it.
func (n Need) FromSource() bool { return n.Origin == FromFile || n.Origin == FromFileOnce }

// namePart is a Secret, key or namespace name at the start of a cell item.
var (
	namePart  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?`)
	ownerCell = regexp.MustCompile(`^([a-z0-9-]+) \((\d\d)\)$`)
	// parenthesized is a note in a cell, "(dev: random stand-ins)".
	parenthesized = regexp.MustCompile(`\([^)]*\)`)
)

// ReadContract reads the Secrets table of docs/contract.md in the
// repository at repo. Each row is one Secret: name (a note in parentheses
// may follow), keys (comma-separated; a note in parentheses, or from ':' to the
// end of the cell, is ignored), namespaces (comma-separated), owner "release (NN)" and the
// origin in staging and prod ("file", "file, once" or "cluster: why").
func ReadContract(repo string) ([]Need, error) {
	path := filepath.Join(repo, ContractFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseContract(b)
}

func parseContract(b []byte) ([]Need, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	var needs []Need
	var errs []string
	in, header, n := false, false, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "## "):
			if in && header {
				return done(needs, errs)
			}
			in = strings.HasPrefix(line, tableHeading)
			continue
		case !in:
			continue
		case !strings.HasPrefix(line, "|"):
			if header && len(needs) > 0 {
				return done(needs, errs)
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if !header {
			header = true
			if len(cells) != 5 || cells[0] != "Secret" || !strings.HasPrefix(cells[4], "staging") {
				errs = append(errs, fmt.Sprintf("%s:%d: the Secrets table must have the columns Secret | keys | namespaces | owner release (layer) | staging, prod", ContractFile, n))
				return done(nil, errs)
			}
			continue
		}
		if strings.Trim(cells[0], "-: ") == "" {
			continue // the separator row
		}
		nd, err := parseRow(cells, n)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		needs = append(needs, nd)
	}
	if !header {
		errs = append(errs, fmt.Sprintf("%s: no table under %q", ContractFile, tableHeading))
	}
	return done(needs, errs)
}

func done(needs []Need, errs []string) ([]Need, error) {
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return needs, nil
}

func parseRow(cells []string, line int) (Need, error) {
	bad := func(col, format string, a ...any) error {
		return fmt.Errorf("%s:%d: column %s: %s", ContractFile, line, col, fmt.Sprintf(format, a...))
	}
	if len(cells) != 5 {
		return Need{}, fmt.Errorf("%s:%d: a row of the Secrets table has %d cells, want 5", ContractFile, line, len(cells))
	}
	nd := Need{Line: line}
	nd.Name = namePart.FindString(strings.Trim(cells[0], "`"))
	if nd.Name == "" || strings.Contains(cells[0], ",") {
		return nd, bad("Secret", "%q: one Secret name per row", cells[0])
	}
	keys := parenthesized.ReplaceAllString(cells[1], "")
	if before, _, ok := strings.Cut(keys, ":"); ok {
		keys = before // a note runs from ':' to the end of the cell
	}
	for _, k := range strings.Split(keys, ",") {
		k = strings.TrimSpace(k)
		name := namePart.FindString(k)
		if name == "" || name != k {
			return nd, bad("keys", "%q is not a key name", k)
		}
		nd.Keys = append(nd.Keys, name)
	}
	for _, ns := range strings.Split(cells[2], ",") {
		ns = strings.TrimSpace(ns)
		if namePart.FindString(ns) != ns || ns == "" {
			return nd, bad("namespaces", "%q is not a namespace", ns)
		}
		nd.Namespaces = append(nd.Namespaces, ns)
	}
	m := ownerCell.FindStringSubmatch(cells[3])
	if m == nil {
		return nd, bad("owner release (layer)", "%q: want \"release (NN)\"", cells[3])
	}
	nd.Release, nd.Layer = m[1], m[2]
	switch origin := cells[4]; {
	case origin == string(FromFile):
		nd.Origin = FromFile
	case strings.HasPrefix(origin, string(FromFileOnce)):
		nd.Origin = FromFileOnce
	case strings.HasPrefix(origin, "cluster"):
		nd.Origin = InCluster
	default:
		return nd, bad("staging, prod", "%q: want file, \"file, once: why\" or \"cluster: why\"", origin)
	}
	return nd, nil
}

// ForLayers are the needs provided by the file whose owner layer is one of
// layers (two-digit prefixes), in table order.
func ForLayers(needs []Need, layers []string) []Need {
	var out []Need
	for _, n := range needs {
		if n.FromSource() && slices.Contains(layers, n.Layer) {
			out = append(out, n)
		}
	}
	return out
}

// LayerPrefix is the two-digit prefix of a layer's folder
// (skaffold/02-infrastructure/skaffold.yaml → 02), or "".
func LayerPrefix(layerFile string) string {
	base := filepath.Base(filepath.Dir(layerFile))
	if len(base) >= 3 && base[2] == '-' && base[0] >= '0' && base[0] <= '9' && base[1] >= '0' && base[1] <= '9' {
		return base[:2]
	}
	return ""
}
