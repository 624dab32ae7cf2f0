{{/*
common.secret: one Secret, copied to the release namespace and to every
namespace of .namespaces, all copies with the same data. Values of the
keys in .generate are random (.length characters, default 32) the first
time and kept from then on: the first existing copy found with `lookup`
that holds the key wins, so upgrades and redeploys keep them, and
helm.sh/resource-policy: keep lets them outlive an uninstall. Keys of
.values are set as given (a username, a database name). Offline renders
(helm template, lint) see no existing copy and show fresh random values.

Call with (dict "root" $ "name" <Secret name> "namespaces" <list>
"generate" <list of keys> "length" <int> "values" <map key: value>
"component" <app.kubernetes.io/component label, optional>).
*/}}
{{- define "common.secret" -}}
{{- $root := .root }}
{{- $name := required "common.secret: name is required" .name }}
{{- $namespaces := prepend (default list .namespaces) $root.Release.Namespace | uniq }}
{{- $length := int (default 32 .length) }}
{{- $data := dict }}
{{- range $key := default list .generate }}
{{- range $ns := $namespaces }}
{{- if not (hasKey $data $key) }}
{{- $existing := lookup "v1" "Secret" $ns $name }}
{{- if and $existing $existing.data (hasKey $existing.data $key) }}
{{- $_ := set $data $key (index $existing.data $key | b64dec) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not (hasKey $data $key) }}
{{- $_ := set $data $key (randAlphaNum $length) }}
{{- end }}
{{- end }}
{{- range $key, $value := default dict .values }}
{{- $_ := set $data $key (toString $value) }}
{{- end }}
{{- range $namespaces }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}
  namespace: {{ . }}
  labels:
    {{- include "common.labels" $root | nindent 4 }}
    {{- with $.component }}
    app.kubernetes.io/component: {{ . }}
    {{- end }}
  annotations:
    helm.sh/resource-policy: keep
type: Opaque
data:
  {{- range $key, $value := $data }}
  {{ $key }}: {{ if $value }}{{ $value | b64enc }}{{ else }}""{{ end }}
  {{- end }}
{{- end }}
{{- end }}
