{{/*
common.labels: the labels of every object (never a selector: helm.sh/chart
and app.kubernetes.io/version change with each chart version).
app.kubernetes.io/version only when the chart has an appVersion.
*/}}
{{- define "common.labels" -}}
helm.sh/chart: {{ include "common.chart" . }}
{{ include "common.selectorLabels" . }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alt
{{- end }}

{{/*
common.selectorLabels: what a workload's selector and its Service select on.
*/}}
{{- define "common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "common.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
