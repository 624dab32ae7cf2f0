{{/*
common.image: a third-party image reference from {repository, tag,
digest?}: repository:tag, plus @digest when one is given (a tag may also
carry its digest: "v1.3.1@sha256:...").
*/}}
{{- define "common.image" -}}
{{- printf "%s:%s" .repository .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
common.injectedImage: a first-party image, whose repository and tag only
Skaffold gives (setValueTemplates); a chart default never names one.
Call with the root context; reads .Values.image.
*/}}
{{- define "common.injectedImage" -}}
{{- $repo := required (printf "image.repository is required: Skaffold injects it via setValueTemplates (release %s)" .Release.Name) .Values.image.repository -}}
{{- $tag := required (printf "image.tag is required: Skaffold injects it via setValueTemplates (release %s)" .Release.Name) .Values.image.tag -}}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
