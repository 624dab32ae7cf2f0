{{/*
Database environment: the credentials from the contract's Secret, then the
DSN assembled from them with $(VAR) expansion (no value in git).
*/}}
{{- define "kratos.dbEnv" -}}
{{- $d := .Values.database -}}
- name: DB_USER
  valueFrom:
    secretKeyRef:
      name: {{ $d.secretName }}
      key: username
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $d.secretName }}
      key: password
- name: DB_NAME
  valueFrom:
    secretKeyRef:
      name: {{ $d.secretName }}
      key: database
- name: DSN
  value: {{ printf "postgres://$(DB_USER):$(DB_PASSWORD)@%s:%d/$(DB_NAME)?sslmode=%s%s" $d.host (int $d.port) $d.sslMode (ternary (printf "&%s" $d.extraParams) "" (ne $d.extraParams "")) | quote }}
{{- end }}

{{- define "kratos.url" -}}
{{- printf "%s%s" (trimSuffix "/" .root.Values.publicURL) .path }}
{{- end }}
