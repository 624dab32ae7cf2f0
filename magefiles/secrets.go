//go:build mage

package main

import (
	"fmt"
	"strings"

	"github.com/alt-platform/orchestration/internal/engine"
	"github.com/alt-platform/orchestration/internal/secrets"
	"github.com/alt-platform/orchestration/internal/ui"
	"github.com/magefile/mage/mg"
)

type Secrets mg.Namespace

// Check lists, for staging and prod, every Secret the contract (docs/contract.md) says the environment's SOPS file provides, and what secrets/<profile>.sops.yaml lacks or holds beyond it: names only, no value is printed. Reads the names without a key; says whether the age key found (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, SOPS_AGE_KEY_CMD, ~/.config/sops/age/keys.txt) decrypts it. Exits non-zero when a file is missing, lacks a name or holds one the contract does not know.
func (Secrets) Check() error {
	repo, err := engine.FindRepo()
	if err != nil {
		return err
	}
	checks, err := secrets.Check(repo, []string{"staging", "prod"})
	if err != nil {
		return err
	}
	var bad []string
	for i, c := range checks {
		if i == 0 {
			var rows [][]string
			for _, n := range c.Needs {
				rows = append(rows, []string{n.Name, strings.Join(n.Keys, ", "), strings.Join(n.Namespaces, ", "), n.Release + " (" + n.Layer + ")", string(n.Origin)})
			}
			ui.Info("the contract (%s) says these come from each environment's file:", secrets.ContractFile)
			ui.Table([]string{"SECRET", "KEYS", "NAMESPACES", "OWNER (LAYER)", "FROM"}, rows)
		}
		ui.Info("")
		switch {
		case !c.Present:
			ui.Warn("%s: %s does not exist: it lacks all %d Secrets (README, \"Staging and prod\")", c.Profile, c.File, len(c.Needs))
		case c.Err != nil:
			ui.Warn("%s: %v", c.Profile, c.Err)
		default:
			if len(c.Lacks) == 0 {
				ui.Info("%s: %s holds every Secret and key the contract needs", c.Profile, c.File)
			}
			for _, l := range c.Lacks {
				ui.Warn("%s: %s lacks %s", c.Profile, c.File, l)
			}
			for _, x := range c.Extra {
				ui.Warn("%s: %s holds %s, which the contract does not name (a typo?)", c.Profile, c.File, x)
			}
			if c.Decrypts {
				ui.Info("%s: your age key decrypts it", c.Profile)
			} else {
				ui.Warn("%s: your age key does not decrypt it: %s", c.Profile, c.Why)
			}
		}
		if !c.OK() {
			bad = append(bad, c.Profile)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("secrets: the files of %s do not match the contract (above)", strings.Join(bad, " and "))
	}
	return nil
}
