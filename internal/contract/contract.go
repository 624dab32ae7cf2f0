// Package contract reads docs/alt-contract.yaml: what Alt's own code, at one
// pinned commit, requires of every first-party workload (image and build,
// ports, health paths, environment, command, database role) and where
// nginx-external routes each path. The static contract check holds the
// rendered charts to it; Sources holds an Alt checkout (ALT_SRC) to its pin.
package contract

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alt-platform/orchestration/internal/run"
	"sigs.k8s.io/yaml"
)

// File is the contract, relative to the repository root.
const File = "docs/alt-contract.yaml"

// Fact is one thing Alt's code requires, with the Alt path it was read from.
type Fact struct {
	Name   string `json:"name,omitempty"`
	Port   int    `json:"port,omitempty"`
	Path   string `json:"path,omitempty"`
	Source string `json:"source"`
}

// Database is the role a service connects as and where its credentials
// come from.
type Database struct {
	User        string `json:"user"`
	UserVar     string `json:"userVar"`
	PasswordVar string `json:"passwordVar"`
	Secret      string `json:"secret"`
	Source      string `json:"source"`
}

// Service is one first-party workload, by the release that deploys it.
type Service struct {
	Release       string    `json:"release"`
	Layer         string    `json:"layer"`
	Image         string    `json:"image"`
	Context       string    `json:"context"`
	Dockerfile    string    `json:"dockerfile"`
	Source        string    `json:"source"`
	Ports         []Fact    `json:"ports"`
	Health        []Fact    `json:"health"`
	Env           []Fact    `json:"env"`
	BuildArgs     []Fact    `json:"buildArgs,omitempty"`
	Command       []string  `json:"command,omitempty"`
	CommandSource string    `json:"commandSource,omitempty"`
	Migrate       []string  `json:"migrate,omitempty"`
	MigrateSource string    `json:"migrateSource,omitempty"`
	Database      *Database `json:"database,omitempty"`
	// Secrets are variables that must come from one Secret key (Name is
	// the variable, Path "secret/key").
	Secrets []Fact `json:"secrets,omitempty"`
	// RolesBefore are the database roles that must exist before this
	// service's schema migration runs (it grants to them without making
	// them): a roles Job of the same release makes each, earlier.
	RolesBefore []Fact `json:"rolesBefore,omitempty"`
}

// Route is one location of nginx-external: path goes to port of the
// Service (default: the release's name) of release, with path replaced by To.
type Route struct {
	Path    string `json:"path"`
	Release string `json:"release"`
	Service string `json:"service,omitempty"`
	Port    int    `json:"port"`
	To      string `json:"to"`
	Source  string `json:"source"`
}

// Contract is the whole file.
type Contract struct {
	Alt struct {
		Repository string `json:"repository"`
		Commit     string `json:"commit"`
	} `json:"alt"`
	Services    []Service `json:"services"`
	Routes      []Route   `json:"routes"`
	EntryHealth Fact      `json:"entryHealth"`
}

// Load reads the contract of the repository at repo, strictly: an unknown
// field is an error naming it.
func Load(repo string) (*Contract, error) {
	b, err := os.ReadFile(filepath.Join(repo, File))
	if err != nil {
		return nil, err
	}
	var c Contract
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", File, err)
	}
	var problems []string
	if len(c.Alt.Commit) != 40 {
		problems = append(problems, "alt.commit: want the 40-hex-digit commit the facts were read at")
	}
	seen := map[string]bool{}
	for i, s := range c.Services {
		if s.Release == "" || s.Image == "" || s.Context == "" || s.Dockerfile == "" {
			problems = append(problems, fmt.Sprintf("services[%d]: release, image, context and dockerfile are required", i))
		}
		if seen[s.Release] {
			problems = append(problems, fmt.Sprintf("services[%d]: release %s listed twice", i, s.Release))
		}
		seen[s.Release] = true
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %s", File, strings.Join(problems, "; "))
	}
	return &c, nil
}

// Service is the service of a release, or nil.
func (c *Contract) Service(release string) *Service {
	for i := range c.Services {
		if c.Services[i].Release == release {
			return &c.Services[i]
		}
	}
	return nil
}

// ServiceByImage is the service built as image, or nil.
func (c *Contract) ServiceByImage(image string) *Service {
	for i := range c.Services {
		if c.Services[i].Image == image {
			return &c.Services[i]
		}
	}
	return nil
}

// Commit is the commit checked out in the Alt checkout dir, or a sentence
// saying why it is not known (not a git checkout, git missing).
func Commit(ctx context.Context, r *run.Runner, dir string) (commit string, known bool) {
	if r == nil {
		r = &run.Runner{}
	}
	out, err := r.Output(ctx, "git", "-C", dir, "rev-parse", "HEAD")
	if err != nil {
		return "unknown (not a git checkout, or git is not installed)", false
	}
	return strings.TrimSpace(out), true
}

// CheckoutHint is how to get the pinned checkout, for messages.
func (c *Contract) CheckoutHint(dir string) string {
	return fmt.Sprintf("git clone %s %s && git -C %s checkout %s", c.Alt.Repository, dir, dir, c.Alt.Commit)
}
