{{/*
Chart name, truncated to the DNS label limit.
*/}}
{{- define "monitoring.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified release name (helm create convention): "monitoring".
*/}}
{{- define "monitoring.fullname" -}}
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

{{- define "monitoring.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "monitoring.labels" -}}
helm.sh/chart: {{ include "monitoring.chart" . }}
{{ include "monitoring.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alt
{{- end }}

{{/*
Selector labels. app.kubernetes.io/name is the release name (contract);
each workload adds app.kubernetes.io/component (prometheus, grafana), which
the foundation NetworkPolicies also select on.
*/}}
{{- define "monitoring.selectorLabels" -}}
app.kubernetes.io/name: {{ include "monitoring.fullname" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "monitoring.prometheus.fullname" -}}
{{- printf "%s-prometheus" (include "monitoring.fullname" .) }}
{{- end }}

{{- define "monitoring.grafana.fullname" -}}
{{- printf "%s-grafana" (include "monitoring.fullname" .) }}
{{- end }}

{{/*
Third-party image reference: repository:tag, plus @digest when pinned.
*/}}
{{- define "monitoring.image" -}}
{{- printf "%s:%s" .repository .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
Grafana dashboard JSON from a values entry {uid, title, panels: [{title, expr, unit?, legend?}]}.
Panels are laid out two per row.
*/}}
{{- define "monitoring.dashboard" -}}
{{- $datasource := dict "type" "prometheus" "uid" "prometheus" }}
{{- $panels := list }}
{{- range $i, $p := .panels }}
{{- $target := dict "refId" "A" "expr" $p.expr "legendFormat" (default "__auto" $p.legend) "datasource" $datasource }}
{{- $grid := dict "h" 8 "w" 12 "x" (mul (mod $i 2) 12) "y" (mul (div $i 2) 8) }}
{{- $field := dict "defaults" (dict "unit" (default "short" $p.unit)) "overrides" list }}
{{- $panels = append $panels (dict "id" (add1 $i) "type" "timeseries" "title" $p.title "datasource" $datasource "gridPos" $grid "fieldConfig" $field "targets" (list $target)) }}
{{- end }}
{{- dict "uid" .uid "title" .title "tags" (list "alt") "editable" false "schemaVersion" 39 "refresh" "30s" "time" (dict "from" "now-6h" "to" "now") "panels" $panels | toPrettyJson }}
{{- end }}
