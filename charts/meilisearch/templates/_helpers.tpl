{{/*
Name of the credentials Secret (contract: <release>-credentials).
*/}}
{{- define "meilisearch.secretName" -}}
{{- default (printf "%s-credentials" (include "common.fullname" .)) .Values.secrets.name }}
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
