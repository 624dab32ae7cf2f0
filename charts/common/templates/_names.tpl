{{/*
Names. One convention for every chart: an object is named after its
release (postgres, kratos-postgres, alt-backend, ...), because the
platform's contract (docs/contract.md) names Services, Secrets and DNS
names by release. fullnameOverride and nameOverride replace it.
*/}}

{{/*
common.name: the app name, app.kubernetes.io/name (the NetworkPolicies of
charts/foundation select on it).
*/}}
{{- define "common.name" -}}
{{- default .Release.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
common.fullname: the name of the release's objects.
*/}}
{{- define "common.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
common.chart: chart name and version, for the helm.sh/chart label.
*/}}
{{- define "common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}
