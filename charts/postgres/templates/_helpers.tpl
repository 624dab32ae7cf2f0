{{/*
Chart name, truncated to the DNS label limit.
*/}}
{{- define "postgres.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name. The contract fixes it to the release name
(postgres, kratos-postgres, auth-postgres): each contains the chart name.
*/}}
{{- define "postgres.fullname" -}}
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

{{- define "postgres.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "postgres.labels" -}}
helm.sh/chart: {{ include "postgres.chart" . }}
{{ include "postgres.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alt
{{- end }}

{{/*
Selector labels. app.kubernetes.io/name is the release name: the contract's
NetworkPolicies select on it.
*/}}
{{- define "postgres.selectorLabels" -}}
app.kubernetes.io/name: {{ include "postgres.fullname" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Third-party image reference: repository:tag, plus @digest when pinned.
*/}}
{{- define "postgres.image" -}}
{{- printf "%s:%s" .repository .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
Name of the credentials Secret (contract: <release>-credentials).
*/}}
{{- define "postgres.secretName" -}}
{{- default (printf "%s-credentials" (include "postgres.fullname" .)) .Values.secrets.name }}
{{- end }}

{{/*
Name of a login role's Secret: <release>-<role with "_" as "-">.
Call with (dict "root" $ "role" <role name>).
*/}}
{{- define "postgres.roleSecretName" -}}
{{- printf "%s-%s" (include "postgres.fullname" .root) (.role | replace "_" "-") | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
One credentials Secret (username, password, database) in the release
namespace and every namespace of .namespaces. The password is the one an
existing copy holds, else a new random one. Call with (dict "root" $ "name"
<Secret name> "username" <user> "namespaces" <list>).
*/}}
{{- define "postgres.credentials" -}}
{{- $root := .root }}
{{- $name := .name }}
{{- $namespaces := prepend .namespaces $root.Release.Namespace | uniq }}
{{- $password := "" }}
{{- range $namespaces }}
{{- if not $password }}
{{- $existing := lookup "v1" "Secret" . $name }}
{{- if and $existing $existing.data (hasKey $existing.data "password") }}
{{- $password = index $existing.data "password" | b64dec }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $password }}
{{- $password = randAlphaNum (int $root.Values.secrets.passwordLength) }}
{{- end }}
{{- range $namespaces }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}
  namespace: {{ . }}
  labels:
    {{- include "postgres.labels" $root | nindent 4 }}
  annotations:
    helm.sh/resource-policy: keep
type: Opaque
data:
  username: {{ $.username | b64enc }}
  password: {{ $password | b64enc }}
  database: {{ $root.Values.database | b64enc }}
{{- end }}
{{- end }}

{{/*
Init container that waits until the database accepts connections.
*/}}
{{- define "postgres.waitForDatabase" -}}
- name: wait-for-database
  image: {{ include "postgres.image" .Values.image | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["sh", "-c", 'until pg_isready -h "$PGHOST" -p "$PGPORT" -t 2; do sleep 2; done']
  env:
    - name: PGHOST
      value: {{ include "postgres.host" . | quote }}
    - name: PGPORT
      value: {{ .Values.service.port | quote }}
  resources:
    {{- toYaml .Values.migration.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
{{- end }}

{{/*
In-cluster host name of the database Service.
*/}}
{{- define "postgres.host" -}}
{{- printf "%s.%s.svc" (include "postgres.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
Environment variable of the roles Job holding a login role's password.
*/}}
{{- define "postgres.rolePasswordVar" -}}
{{- printf "PASSWORD_%s" (. | upper) }}
{{- end }}
