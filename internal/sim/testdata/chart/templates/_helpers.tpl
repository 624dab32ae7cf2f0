{{/* A pod spec's security settings that Pod Security "restricted" admits. */}}
{{- define "sim-test.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{/* A container of this chart: restricted, with requests. */}}
{{- define "sim-test.container" -}}
name: main
image: {{ .Values.image }}
resources:
  requests: {cpu: 50m, memory: 32Mi}
  limits: {memory: 32Mi}
securityContext:
  allowPrivilegeEscalation: false
  capabilities:
    drop: [ALL]
{{- end }}
