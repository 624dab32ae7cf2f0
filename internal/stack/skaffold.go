package stack

import "encoding/json"

// The subset of the Skaffold schema (skaffold/v4beta13) that the stack model
// reads. Skaffold itself validates the whole schema; these types only need
// the fields that name layers, releases, artifacts, profiles and hooks.

type skaffoldFile struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Requires []struct {
		Path string `json:"path"`
	} `json:"requires"`
	Build    *buildConfig  `json:"build"`
	Deploy   *deployConfig `json:"deploy"`
	Profiles []profile     `json:"profiles"`
}

type buildConfig struct {
	Artifacts []artifact `json:"artifacts"`
	TagPolicy *struct {
		GitCommit   *struct{} `json:"gitCommit"`
		InputDigest *struct{} `json:"inputDigest"`
		Sha256      *struct{} `json:"sha256"`
	} `json:"tagPolicy"`
	Local *struct {
		Push        *bool `json:"push"`
		UseBuildkit *bool `json:"useBuildkit"`
	} `json:"local"`
}

type artifact struct {
	raw     map[string]any // the whole entry, every field as written
	Image   string         `json:"image"`
	Context string         `json:"context"`
	Docker  *struct {
		Dockerfile string             `json:"dockerfile"`
		BuildArgs  map[string]*string `json:"buildArgs"`
	} `json:"docker"`
}

type deployConfig struct {
	Helm *helmDeploy `json:"helm"`
}

type helmDeploy struct {
	Releases []helmRelease `json:"releases"`
	Hooks    struct {
		Before []hookItem `json:"before"`
		After  []hookItem `json:"after"`
	} `json:"hooks"`
}

type helmRelease struct {
	raw               map[string]any    // the whole entry, every field as written
	Name              string            `json:"name"`
	ChartPath         string            `json:"chartPath"`
	RemoteChart       string            `json:"remoteChart"`
	Repo              string            `json:"repo"`
	Version           string            `json:"version"`
	Namespace         string            `json:"namespace"`
	ValuesFiles       []string          `json:"valuesFiles"`
	SetValues         map[string]any    `json:"setValues"`
	SetValueTemplates map[string]string `json:"setValueTemplates"`
	CreateNamespace   *bool             `json:"createNamespace"`
	// SkipBuildDependencies false makes Skaffold run `helm dependency
	// build` on the chart before each install.
	SkipBuildDependencies *bool `json:"skipBuildDependencies"`
}

type hookItem struct {
	Host *struct {
		Command []string `json:"command"`
		Dir     string   `json:"dir"`
	} `json:"host"`
}

type profile struct {
	Name       string `json:"name"`
	Activation []struct {
		Env string `json:"env"`
	} `json:"activation"`
	Build  *buildConfig  `json:"build"`
	Deploy *deployConfig `json:"deploy"`
}

// UnmarshalJSON reads the fields above and keeps the whole entry, so that a
// config derived from a layer (watch) carries every field Skaffold reads,
// not only those this model names.
func (a *artifact) UnmarshalJSON(b []byte) error {
	type plain artifact
	if err := json.Unmarshal(b, (*plain)(a)); err != nil {
		return err
	}
	return json.Unmarshal(b, &a.raw)
}

// UnmarshalJSON: as for artifact.
func (r *helmRelease) UnmarshalJSON(b []byte) error {
	type plain helmRelease
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	return json.Unmarshal(b, &r.raw)
}
