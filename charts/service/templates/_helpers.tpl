{{/*
Environment: secretEnv first (so env values can use $(NAME)), then env,
then the egress proxy settings.
*/}}
{{- define "service.env" -}}
{{- range $name, $ref := .Values.secretEnv }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "secretEnv.%s.secret is required" $name) $ref.secret }}
      key: {{ required (printf "secretEnv.%s.key is required" $name) $ref.key }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with .Values.egressProxy }}
{{- if .enabled }}
{{- $noProxy := printf "%s,$(KUBERNETES_SERVICE_HOST)" .noProxy }}
{{- range list "HTTP_PROXY" "HTTPS_PROXY" "http_proxy" "https_proxy" }}
- name: {{ . }}
  value: {{ $.Values.egressProxy.url | quote }}
{{- end }}
{{- range list "NO_PROXY" "no_proxy" }}
- name: {{ . }}
  value: {{ $noProxy | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Volume mounts and volumes shared by both modes.
*/}}
{{- define "service.volumeMounts" -}}
{{- if .Values.tmpVolume.enabled }}
- name: tmp
  mountPath: /tmp
{{- end }}
{{- range $name, $m := .Values.secretMounts }}
- name: {{ $name }}
  mountPath: {{ required (printf "secretMounts.%s.mountPath is required" $name) $m.mountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "service.volumes" -}}
{{- if .Values.tmpVolume.enabled }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end }}
{{- range $name, $m := .Values.secretMounts }}
- name: {{ $name }}
  secret:
    secretName: {{ required (printf "secretMounts.%s.secret is required" $name) $m.secret }}
{{- end }}
{{- end }}

{{/*
Probe handler for the configured type.
*/}}
{{- define "service.probeHandler" -}}
{{- $p := .probes }}
{{- if eq $p.type "http" }}
httpGet:
  path: {{ .path }}
  port: {{ $p.port }}
{{- else }}
tcpSocket:
  port: {{ $p.port }}
{{- end }}
{{- end }}

{{/*
Pod annotations: Prometheus scraping plus extra annotations.
*/}}
{{- define "service.podAnnotations" -}}
{{- if .Values.metrics.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ default .Values.containerPort .Values.metrics.port | toString | quote }}
prometheus.io/path: {{ .Values.metrics.path | quote }}
{{- end }}
{{- if and (not .Values.probes.enabled) .Values.probes.noneBecause }}
alt-platform.io/no-probes: {{ .Values.probes.noneBecause | quote }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The container spec shared by both modes (without probes).
*/}}
{{- define "service.container" -}}
name: {{ include "common.name" . }}
image: {{ include "common.injectedImage" (dict "image" .Values.image "key" "image" "release" .Release.Name) }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- with .Values.command }}
command:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.args }}
args:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $env := include "service.env" . | trim }}
{{- if $env }}
env:
  {{- $env | nindent 2 }}
{{- end }}
{{- if gt (int .Values.containerPort) 0 }}
ports:
  - name: http
    containerPort: {{ .Values.containerPort }}
    protocol: TCP
  {{- if and .Values.metrics.enabled (gt (int .Values.metrics.port) 0) (ne (int .Values.metrics.port) (int .Values.containerPort)) }}
  - name: metrics
    containerPort: {{ .Values.metrics.port }}
    protocol: TCP
  {{- end }}
{{- end }}
resources:
  {{- required "resources are required on every container" .Values.resources | toYaml | nindent 2 }}
securityContext:
  {{- include "common.securityContext" .Values.securityContext | nindent 2 }}
{{- $mounts := include "service.volumeMounts" . | trim }}
{{- if $mounts }}
volumeMounts:
  {{- $mounts | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Pod-level settings shared by both modes.
*/}}
{{- define "service.podCommon" -}}
serviceAccountName: {{ include "service.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "common.podSecurityContext" .Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $volumes := include "service.volumes" . | trim }}
{{- if $volumes }}
volumes:
  {{- $volumes | nindent 2 }}
{{- end }}
{{- end }}

{{- define "service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ include "common.fullname" . }}{{ else }}default{{ end }}
{{- end }}

{{/*
True when the pods need an API token: explicitly, or to reach ownSecret.
*/}}
{{- define "service.automountToken" -}}
{{- if or .Values.serviceAccount.automountToken .Values.ownSecret.name }}true{{ else }}false{{ end }}
{{- end }}
