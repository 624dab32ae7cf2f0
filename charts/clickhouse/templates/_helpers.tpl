{{/*
Chart name, truncated to the DNS label limit.
*/}}
{{- define "clickhouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name. The contract fixes it to the release name
(clickhouse): it contains the chart name.
*/}}
{{- define "clickhouse.fullname" -}}
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

{{- define "clickhouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "clickhouse.labels" -}}
helm.sh/chart: {{ include "clickhouse.chart" . }}
{{ include "clickhouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alt
{{- end }}

{{/*
Selector labels. app.kubernetes.io/name is the release name: the contract's
NetworkPolicies select on it.
*/}}
{{- define "clickhouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clickhouse.fullname" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Third-party image reference: repository:tag, plus @digest when pinned.
*/}}
{{- define "clickhouse.image" -}}
{{- printf "%s:%s" .repository .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
Name of the credentials Secret (contract: <release>-credentials).
*/}}
{{- define "clickhouse.secretName" -}}
{{- default (printf "%s-credentials" (include "clickhouse.fullname" .)) .Values.secrets.name }}
{{- end }}

{{/*
Namespaces that hold a copy of the credentials Secret: the release namespace
first, then every consumer namespace.
*/}}
{{- define "clickhouse.secretNamespaces" -}}
{{- prepend .Values.secrets.namespaces .Release.Namespace | uniq | toJson }}
{{- end }}
