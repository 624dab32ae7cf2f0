{{/*
common.probe: one probe from its handler and its timing, as YAML.
Call with (dict "handler" <httpGet/tcpSocket/exec map> "timing" <map of
periodSeconds, timeoutSeconds, failureThreshold, ...>). The handler is
required: a probe without one is refused by the API server.
*/}}
{{- define "common.probe" -}}
{{- $handler := required "common.probe: a handler (httpGet, tcpSocket or exec) is required" .handler }}
{{- toYaml (merge (deepCopy $handler) (default dict .timing)) }}
{{- end }}

{{/*
common.probes: the three probes of a long-running container. Call with
(dict "startup" <probe> "readiness" <probe> "liveness" <probe>), each as
common.probe takes it. Liveness should only restart a process that no
longer accepts connections (tcpSocket); a slow dependency is readiness's.
*/}}
{{- define "common.probes" -}}
{{- $out := list }}
{{- range $kind := list "startup" "readiness" "liveness" }}
{{- with index $ $kind }}
{{- $out = append $out (printf "%sProbe:\n%s" $kind (include "common.probe" . | indent 2)) }}
{{- end }}
{{- end }}
{{- join "\n" $out }}
{{- end }}
