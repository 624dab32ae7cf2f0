{{/*
Pod spec of a backup or restore run.
Input: dict root=$ name=<target> target=<target values> mode=backup|restore file=<restore file>.
*/}}
{{- define "backups.podSpec" -}}
{{- $root := .root }}
{{- $t := .target }}
{{- $image := index $root.Values.images (eq $t.type "meilisearch" | ternary "kubectl" $t.type) }}
restartPolicy: Never
{{- if eq $t.type "meilisearch" }}
serviceAccountName: {{ include "common.fullname" $root }}-meilisearch
{{- else }}
automountServiceAccountToken: false
{{- end }}
enableServiceLinks: false
{{- $uid := index $root.Values.runAsUser $t.type }}
securityContext:
  {{- include "common.podSecurityContext" (dict "runAsUser" $uid "runAsGroup" $uid "fsGroup" $uid) | nindent 2 }}
containers:
  - name: {{ .mode }}
    image: {{ include "common.image" $image | quote }}
    imagePullPolicy: {{ $image.pullPolicy }}
    command: ["sh", "/scripts/{{ $t.type }}-{{ .mode }}.sh"]
    env:
      - name: TARGET
        value: {{ .name | quote }}
      - name: BACKUP_DIR
        value: /backups
      - name: KEEP
        value: {{ $root.Values.keep | quote }}
      - name: VERIFY_RESTORE
        value: {{ $root.Values.verifyRestore | quote }}
      - name: HOME
        value: /tmp
      {{- with .file }}
      - name: RESTORE_FILE
        value: {{ . | quote }}
      {{- end }}
      {{- if eq $t.type "postgres" }}
      - name: PGHOST
        value: {{ printf "%s.%s.svc" $t.host $t.namespace | quote }}
      - name: PGPORT
        value: {{ $t.port | quote }}
      - name: PGUSER
        valueFrom:
          secretKeyRef: {name: {{ $t.secret }}, key: username}
      - name: PGPASSWORD
        valueFrom:
          secretKeyRef: {name: {{ $t.secret }}, key: password}
      - name: PGDATABASE
        valueFrom:
          secretKeyRef: {name: {{ $t.secret }}, key: database}
      {{- else if eq $t.type "clickhouse" }}
      - name: CH_HOST
        value: {{ printf "%s.%s.svc" $t.host $t.namespace | quote }}
      - name: CH_PORT
        value: {{ $t.port | quote }}
      - name: CH_USER
        valueFrom:
          secretKeyRef: {name: {{ $t.secret }}, key: username}
      - name: CH_PASSWORD
        valueFrom:
          secretKeyRef: {name: {{ $t.secret }}, key: password}
      {{- else if eq $t.type "meilisearch" }}
      - name: MEILI_URL
        value: {{ printf "http://%s.%s.svc:%v" $t.host $t.namespace $t.port | quote }}
      - name: MEILI_MASTER_KEY
        valueFrom:
          secretKeyRef: {name: {{ $t.secret }}, key: master-key}
      - name: MEILI_NAMESPACE
        value: {{ $t.namespace | quote }}
      - name: MEILI_POD
        value: {{ $t.pod | quote }}
      - name: MEILI_CONTAINER
        value: {{ $t.container | quote }}
      - name: MEILI_DUMP_DIR
        value: {{ $t.dumpDir | quote }}
      - name: MEILI_DB_PATH
        value: {{ $t.dbPath | quote }}
      - name: MEILI_IMPORT_DUMP
        value: {{ $t.importDump | quote }}
      - name: DUMP_TIMEOUT
        value: {{ $root.Values.meilisearchTimeoutSeconds | quote }}
      - name: IMPORT_TIMEOUT
        value: {{ $root.Values.meilisearchTimeoutSeconds | quote }}
      {{- end }}
    resources:
      {{- toYaml $root.Values.resources | nindent 6 }}
    securityContext:
      {{- include "common.securityContext" $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      - name: backups
        mountPath: /backups
      - name: scripts
        mountPath: /scripts
        readOnly: true
      - name: tmp
        mountPath: /tmp
volumes:
  - name: backups
    persistentVolumeClaim:
      claimName: {{ include "common.fullname" $root }}-{{ .name }}
  - name: scripts
    configMap:
      name: {{ include "common.fullname" $root }}-scripts
  - name: tmp
    emptyDir: {}
{{- end }}
