{{/*
Chart name, truncated to the DNS label limit.
*/}}
{{- define "meilisearch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name. The contract fixes it to the release name
(meilisearch): it contains the chart name.
*/}}
{{- define "meilisearch.fullname" -}}
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

{{- define "meilisearch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "meilisearch.labels" -}}
helm.sh/chart: {{ include "meilisearch.chart" . }}
{{ include "meilisearch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alt
{{- end }}

{{/*
Selector labels. app.kubernetes.io/name is the release name: the contract's
NetworkPolicies select on it.
*/}}
{{- define "meilisearch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meilisearch.fullname" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Third-party image reference: repository:tag, plus @digest when pinned.
*/}}
{{- define "meilisearch.image" -}}
{{- printf "%s:%s" .repository .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
Name of the credentials Secret (contract: <release>-credentials).
*/}}
{{- define "meilisearch.secretName" -}}
{{- default (printf "%s-credentials" (include "meilisearch.fullname" .)) .Values.secrets.name }}
{{- end }}

{{/*
Namespaces that hold a copy of the credentials Secret: the release namespace
first, then every consumer namespace.
*/}}
{{- define "meilisearch.secretNamespaces" -}}
{{- prepend .Values.secrets.namespaces .Release.Namespace | uniq | toJson }}
{{- end }}

{{/*
The Secrets of scopedKeys by namespace, as JSON: {namespace: [name, ...]}.
*/}}
{{- define "meilisearch.keysByNamespace" -}}
{{- $m := dict }}
{{- range .Values.scopedKeys }}
{{- $_ := set $m .secret.namespace (append (get $m .secret.namespace | default list) .secret.name | uniq) }}
{{- end }}
{{- $m | toJson }}
{{- end }}
