{{/*
Chart name, truncated to the DNS label limit.
*/}}
{{- define "postgres.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name. The contract fixes it to the release name
(postgres, kratos-postgres, auth-postgres): each contains the chart name.
*/}}
{{- define "postgres.fullname" -}}
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

{{- define "postgres.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "postgres.labels" -}}
helm.sh/chart: {{ include "postgres.chart" . }}
{{ include "postgres.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alt
{{- end }}

{{/*
Selector labels. app.kubernetes.io/name is the release name: the contract's
NetworkPolicies select on it.
*/}}
{{- define "postgres.selectorLabels" -}}
app.kubernetes.io/name: {{ include "postgres.fullname" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Third-party image reference: repository:tag, plus @digest when pinned.
*/}}
{{- define "postgres.image" -}}
{{- printf "%s:%s" .repository .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
Name of the credentials Secret (contract: <release>-credentials).
*/}}
{{- define "postgres.secretName" -}}
{{- default (printf "%s-credentials" (include "postgres.fullname" .)) .Values.secrets.name }}
{{- end }}

{{/*
Namespaces that hold a copy of the credentials Secret: the release namespace
first, then every consumer namespace.
*/}}
{{- define "postgres.secretNamespaces" -}}
{{- prepend .Values.secrets.namespaces .Release.Namespace | uniq | toJson }}
{{- end }}
