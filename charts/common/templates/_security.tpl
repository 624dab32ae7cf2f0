{{/*
Security contexts at Pod Security "restricted". Each helper renders the
chart's own setting (a values map) with every field of the restricted
floor it does not set added, so that a values file can set a user or relax
readOnlyRootFilesystem but cannot silently lose the floor by omission.
Whether the result passes "restricted" is the policy check's business
(internal/check, the admission plugin's own evaluation).
*/}}

{{/*
common.podSecurityContext: the pod's, from a values map (or nothing).
Floor: runAsNonRoot, seccompProfile RuntimeDefault.
*/}}
{{- define "common.podSecurityContext" -}}
{{- $floor := dict "runAsNonRoot" true "seccompProfile" (dict "type" "RuntimeDefault") }}
{{- include "common.withFloor" (list (default dict .) $floor) }}
{{- end }}

{{/*
common.securityContext: a container's, from a values map (or nothing).
Floor: no privilege escalation, every capability dropped, a read-only root
filesystem.
*/}}
{{- define "common.securityContext" -}}
{{- $floor := dict "allowPrivilegeEscalation" false "capabilities" (dict "drop" (list "ALL")) "readOnlyRootFilesystem" true }}
{{- include "common.withFloor" (list (default dict .) $floor) }}
{{- end }}

{{/*
common.withFloor: (list settings floor) as YAML, each top-level field of
floor added where settings does not set it (a false in settings stays).
*/}}
{{- define "common.withFloor" -}}
{{- $out := deepCopy (index . 0) }}
{{- range $k, $v := index . 1 }}
{{- if not (hasKey $out $k) }}
{{- $_ := set $out $k $v }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
