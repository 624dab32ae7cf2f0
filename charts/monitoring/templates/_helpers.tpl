{{- define "monitoring.prometheus.fullname" -}}
{{- printf "%s-prometheus" (include "common.fullname" .) }}
{{- end }}

{{- define "monitoring.grafana.fullname" -}}
{{- printf "%s-grafana" (include "common.fullname" .) }}
{{- end }}

{{/*
Grafana dashboard JSON from a values entry {uid, title, panels: [{title, expr, unit?, legend?}]}.
Panels are laid out two per row.
*/}}
{{- define "monitoring.dashboard" -}}
{{- $datasource := dict "type" "prometheus" "uid" "prometheus" }}
{{- $panels := list }}
{{- range $i, $p := .panels }}
{{- $target := dict "refId" "A" "expr" $p.expr "legendFormat" (default "__auto" $p.legend) "datasource" $datasource }}
{{- $grid := dict "h" 8 "w" 12 "x" (mul (mod $i 2) 12) "y" (mul (div $i 2) 8) }}
{{- $field := dict "defaults" (dict "unit" (default "short" $p.unit)) "overrides" list }}
{{- $panels = append $panels (dict "id" (add1 $i) "type" "timeseries" "title" $p.title "datasource" $datasource "gridPos" $grid "fieldConfig" $field "targets" (list $target)) }}
{{- end }}
{{- dict "uid" .uid "title" .title "tags" (list "alt") "editable" false "schemaVersion" 39 "refresh" "30s" "time" (dict "from" "now-6h" "to" "now") "panels" $panels | toPrettyJson }}
{{- end }}
