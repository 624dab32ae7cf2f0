package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// PlaceholderTag is the tag every first-party image gets where nothing is
// built: the sim cluster, the static checks, bench.
const PlaceholderTag = "sim"

// Placeholders maps each image to itself with the placeholder tag. In
// staging and prod, which deploy only pushed images, each is also pinned
// by a digest (of the reference itself), as a push pins it.
func Placeholders(profile string, images []string) map[string]string {
	m := make(map[string]string, len(images))
	for _, img := range images {
		ref := img + ":" + PlaceholderTag
		if profile != "dev" {
			sum := sha256.Sum256([]byte(ref))
			ref += "@sha256:" + hex.EncodeToString(sum[:])
		}
		m[img] = ref
	}
	return m
}

// Artifacts maps images to the references they deploy as: the build
// artifacts file of `skaffold build --file-output` and `skaffold deploy
// --build-artifacts`.
type Artifacts map[string]string

type artifactsFile struct {
	Builds []artifactBuild `json:"builds"`
}

type artifactBuild struct {
	ImageName string `json:"imageName"`
	Tag       string `json:"tag"`
}

// Write writes a as a build artifacts file, its images in sorted order.
func (a Artifacts) Write(path string) error {
	f := artifactsFile{Builds: []artifactBuild{}}
	for _, img := range sortedKeys(a) {
		f.Builds = append(f.Builds, artifactBuild{img, a[img]})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// ReadArtifacts reads a build artifacts file.
func ReadArtifacts(path string) (Artifacts, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f artifactsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a := Artifacts{}
	for _, bd := range f.Builds {
		a[bd.ImageName] = bd.Tag
	}
	return a, nil
}

var nonAlnum = regexp.MustCompile(`[^A-Za-z0-9]`)

// ArtifactVar is the suffix Skaffold gives an image in IMAGE_REPO_x:
// every character outside [A-Za-z0-9] becomes an underscore.
func ArtifactVar(image string) string { return nonAlnum.ReplaceAllString(image, "_") }

// ImageVars adds to vars the variables Skaffold gives setValueTemplates for
// one artifact image deployed as ref (repo[:tag][@digest]): IMAGE_REPO_x,
// IMAGE_TAG_x, IMAGE_DIGEST_x, IMAGE_FULLY_QUALIFIED_x, IMAGE_DOMAIN_x and
// IMAGE_REPO_NO_DOMAIN_x.
func ImageVars(vars map[string]string, image, ref string) {
	repo, digest, _ := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	domain, path := "", repo
	if d, rest, ok := strings.Cut(repo, "/"); ok && (strings.ContainsAny(d, ".:") || d == "localhost") {
		domain, path = d, rest
	}
	x := ArtifactVar(image)
	vars["IMAGE_REPO_"+x] = repo
	vars["IMAGE_TAG_"+x] = tag
	vars["IMAGE_DIGEST_"+x] = digest
	vars["IMAGE_FULLY_QUALIFIED_"+x] = ref
	vars["IMAGE_DOMAIN_"+x] = domain
	vars["IMAGE_REPO_NO_DOMAIN_"+x] = path
}

var templateVar = regexp.MustCompile(`\{\{\s*\.([A-Za-z0-9_]+)\s*\}\}`)

// TemplateArgs are the arguments of `helm template` for the release with
// its values files and the given --set values; chart and values paths are
// joined to root ("" keeps them relative to the repository).
func (r Release) TemplateArgs(root string, sets []string) []string {
	args := []string{"template", r.Name, filepath.Join(root, r.Chart), "--namespace", r.Namespace}
	for _, f := range r.ValuesFiles {
		args = append(args, "--values", filepath.Join(root, f))
	}
	for _, kv := range sets {
		args = append(args, "--set", kv)
	}
	return args
}

// Sets are the release's setValueTemplates filled from vars, as Helm
// `--set` arguments (key=value, keys sorted), the way Skaffold passes them.
// A template naming a variable that vars lacks, or using more than plain
// {{.NAME}}, is an error naming the key: nothing here guesses what Skaffold
// would make of it.
func (r Release) Sets(vars map[string]string) ([]string, error) {
	keys := make([]string, 0, len(r.Templates))
	for k := range r.Templates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sets []string
	var problems []string
	for _, k := range keys {
		var missing []string
		v := templateVar.ReplaceAllStringFunc(r.Templates[k], func(m string) string {
			val, ok := vars[templateVar.FindStringSubmatch(m)[1]]
			if !ok {
				missing = append(missing, m)
			}
			return val
		})
		switch {
		case len(missing) > 0:
			problems = append(problems, fmt.Sprintf("setValueTemplates[%s]: %s names no variable of this run (an artifact of the layer or the environment)", k, strings.Join(missing, ", ")))
		case strings.Contains(v, "{{"):
			problems = append(problems, fmt.Sprintf("setValueTemplates[%s]: %q: only plain {{.NAME}} variables are supported", k, r.Templates[k]))
		default:
			sets = append(sets, k+"="+v)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("release %s: %s", r.Name, strings.Join(problems, "; "))
	}
	return sets, nil
}

// Images are the artifacts (of the given ones) whose image the release's
// setValueTemplates name through any of Skaffold's IMAGE_*_x variables:
// what must be built for that release alone.
func (r Release) Images(artifacts []Artifact) []string {
	used := map[string]bool{}
	for _, t := range r.Templates {
		for _, m := range templateVar.FindAllStringSubmatch(t, -1) {
			used[m[1]] = true
		}
	}
	var out []string
	for _, a := range artifacts {
		vars := map[string]string{}
		ImageVars(vars, a.Image, a.Image)
		for v := range vars {
			if used[v] {
				out = append(out, a.Image)
				break
			}
		}
	}
	return out
}
