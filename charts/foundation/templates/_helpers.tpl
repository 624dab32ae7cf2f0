{{/*
Chart name, truncated to the DNS label limit.
*/}}
{{- define "foundation.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified release name (helm create convention).
*/}}
{{- define "foundation.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "foundation.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels. Nothing here selects pods: this chart runs none.
*/}}
{{- define "foundation.labels" -}}
helm.sh/chart: {{ include "foundation.chart" . }}
app.kubernetes.io/name: {{ include "foundation.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alt
{{- end }}

{{/*
True ("true") when the namespace is a platform namespace (alt-*): those get
quotas, limit ranges, the shared ConfigMap and default-deny policies.
*/}}
{{- define "foundation.isPlatform" -}}
{{- if hasPrefix "alt-" . }}true{{ end }}
{{- end }}

{{/*
Pod selector of one flow endpoint: {namespace, app, component?}.
Selects on app.kubernetes.io/name (the contract), narrowed by
app.kubernetes.io/component when the endpoint names one.
*/}}
{{- define "foundation.podSelector" -}}
matchLabels:
  app.kubernetes.io/name: {{ .app }}
  {{- with .component }}
  app.kubernetes.io/component: {{ . }}
  {{- end }}
{{- end }}

{{/*
Peer (namespace + pod selector) of one flow endpoint.
*/}}
{{- define "foundation.peer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .namespace }}
  podSelector:
    {{- include "foundation.podSelector" . | nindent 4 }}
{{- end }}

{{/*
Stable key / object-name fragment of one endpoint: app[-component].
*/}}
{{- define "foundation.endpointName" -}}
{{- if .component }}{{ printf "%s-%s" .app .component }}{{ else }}{{ .app }}{{ end }}
{{- end }}

{{/*
TCP port list of a flow.
*/}}
{{- define "foundation.ports" -}}
{{- $out := list }}
{{- range . }}
{{- $out = append $out (dict "protocol" "TCP" "port" (int .)) }}
{{- end }}
{{- toYaml $out }}
{{- end }}
