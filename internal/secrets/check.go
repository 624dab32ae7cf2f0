package secrets

import (
	"errors"
	"os"
	"path/filepath"
)

// EnvCheck is what one environment's file holds against the contract, in
// names only.
type EnvCheck struct {
	Profile string
	File    string // relative to the repository
	Needs   []Need // what the contract says the file provides
	Present bool   // the file exists
	Err     error  // it exists but cannot be read as a SOPS file
	Lacks   []Lack
	Extra   []string // Secrets in the file that the contract does not name
	// Decrypts is whether the age key found (KeyHelp) opens it; Why says
	// why not. Only tried when the file is present and readable.
	Decrypts bool
	Why      string
}

// OK says the file holds everything the contract needs and nothing else.
func (c EnvCheck) OK() bool {
	return c.Present && c.Err == nil && len(c.Lacks) == 0 && len(c.Extra) == 0
}

// Check reads each profile's file in the repository at repo against the
// contract, without printing or keeping a value.
func Check(repo string, profiles []string) ([]EnvCheck, error) {
	all, err := ReadContract(repo)
	if err != nil {
		return nil, err
	}
	var needs []Need
	for _, n := range all {
		if n.FromSource() {
			needs = append(needs, n)
		}
	}
	var out []EnvCheck
	for _, p := range profiles {
		c := EnvCheck{Profile: p, File: File(p), Needs: needs}
		path := filepath.Join(repo, c.File)
		names, err := ReadNames(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			c.Lacks, _ = Compare(needs, Names{})
		case err != nil:
			c.Present, c.Err = true, err
		default:
			c.Present = true
			c.Lacks, c.Extra = Compare(needs, names)
			if _, err := Decrypt(path); err != nil {
				c.Why = err.Error()
			} else {
				c.Decrypts = true
			}
		}
		out = append(out, c)
	}
	return out, nil
}
