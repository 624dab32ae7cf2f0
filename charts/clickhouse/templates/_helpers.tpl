{{/*
Name of the credentials Secret (contract: <release>-credentials).
*/}}
{{- define "clickhouse.secretName" -}}
{{- default (printf "%s-credentials" (include "common.fullname" .)) .Values.secrets.name }}
{{- end }}
