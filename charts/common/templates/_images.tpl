{{/*
common.image: a third-party image reference from {repository, tag,
digest?}: repository:tag, plus @digest when one is given (a tag may also
carry its digest: "v1.3.1@sha256:...").
*/}}
{{- define "common.image" -}}
{{- printf "%s:%s" .repository .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
common.injectedImage: a first-party image, whose repository, tag and
digest only Skaffold gives (setValueTemplates IMAGE_REPO_x, IMAGE_TAG_x,
IMAGE_DIGEST_x); a chart default never names one. repository:tag, plus
@digest when the image was pushed (staging and prod deploy only such
references: promotion by digest). Call with (dict "image" <the values map>
"key" <its values path> "release" .Release.Name).
*/}}
{{- define "common.injectedImage" -}}
{{- $repo := required (printf "%s.repository is required: Skaffold injects it via setValueTemplates (release %s)" .key .release) .image.repository -}}
{{- $tag := required (printf "%s.tag is required: Skaffold injects it via setValueTemplates (release %s)" .key .release) .image.tag -}}
{{- printf "%s:%s" $repo $tag }}{{ with .image.digest }}@{{ . }}{{ end }}
{{- end }}
