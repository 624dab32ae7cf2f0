{{/*
Name of the credentials Secret (contract: <release>-credentials).
*/}}
{{- define "postgres.secretName" -}}
{{- default (printf "%s-credentials" (include "common.fullname" .)) .Values.secrets.name }}
{{- end }}

{{/*
Name of a login role's Secret: <release>-<role with "_" as "-">.
Call with (dict "root" $ "role" <role name>).
*/}}
{{- define "postgres.roleSecretName" -}}
{{- printf "%s-%s" (include "common.fullname" .root) (.role | replace "_" "-") | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
One credentials Secret (username, password, database) in the release
namespace and every namespace of .namespaces (common.secret: the password
is generated once and kept). Call with (dict "root" $ "name" <Secret name>
"username" <user> "namespaces" <list>).
*/}}
{{- define "postgres.credentials" -}}
{{- include "common.secret" (dict "root" .root "name" .name "namespaces" .namespaces "generate" (list "password") "length" .root.Values.secrets.passwordLength "values" (dict "username" .username "database" .root.Values.database)) }}
{{- end }}

{{/*
Init container that waits until the database accepts connections.
*/}}
{{- define "postgres.waitForDatabase" -}}
- name: wait-for-database
  image: {{ include "common.image" .Values.image | quote }}
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
    {{- include "common.securityContext" .Values.securityContext | nindent 4 }}
{{- end }}

{{/*
In-cluster host name of the database Service.
*/}}
{{- define "postgres.host" -}}
{{- printf "%s.%s.svc" (include "common.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
Environment variable of the roles Job holding a login role's password.
*/}}
{{- define "postgres.rolePasswordVar" -}}
{{- printf "PASSWORD_%s" (. | upper) }}
{{- end }}
