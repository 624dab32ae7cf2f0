{{- define "llm-server.name" -}}
{{- default .Release.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llm-server.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llm-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llm-server.labels" -}}
helm.sh/chart: {{ include "llm-server.chart" . }}
{{ include "llm-server.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alt
{{- end }}

{{- define "llm-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llm-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "llm-server.image" -}}
{{- $repo := required (printf "image.repository is required: Skaffold injects it via setValueTemplates (release %s)" .Release.Name) .Values.image.repository -}}
{{- $tag := required (printf "image.tag is required: Skaffold injects it via setValueTemplates (release %s)" .Release.Name) .Values.image.tag -}}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

