{{/*
common.pdb: the PodDisruptionBudget of a Deployment or StatefulSet, when
.root.Values.pdb.enabled or it runs more than one replica (a budget on one
replica would block every node drain). Reads pdb.minAvailable and
replicaCount. Call with (dict "root" $ "component" <the pods'
app.kubernetes.io/component, optional>).
*/}}
{{- define "common.pdb" -}}
{{- $root := .root }}
{{- if or $root.Values.pdb.enabled (gt (int $root.Values.replicaCount) 1) }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "common.fullname" $root }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "common.labels" $root | nindent 4 }}
spec:
  minAvailable: {{ $root.Values.pdb.minAvailable }}
  selector:
    matchLabels:
      {{- include "common.selectorLabels" $root | nindent 6 }}
      {{- with .component }}
      app.kubernetes.io/component: {{ . }}
      {{- end }}
{{- end }}
{{- end }}
