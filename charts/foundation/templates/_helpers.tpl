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
