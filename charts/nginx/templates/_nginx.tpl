{{/*
nginx.tls: whether the entry serves HTTPS (tls.certManager "on").
*/}}
{{- define "nginx.tls" -}}
{{- if eq .Values.tls.certManager "on" }}true{{ end -}}
{{- end }}

{{/*
nginx.tlsSecret: the Secret cert-manager writes the key pair into.
*/}}
{{- define "nginx.tlsSecret" -}}
{{- default (printf "%s-tls" (include "common.fullname" .)) .Values.tls.secretName -}}
{{- end }}

{{/*
nginx.health: the location nginx answers itself (probes, load balancers).
*/}}
{{- define "nginx.health" -}}
location = /nginx-health {
  access_log off;
  default_type text/plain;
  return 200 "ok\n";
}
{{- end }}

{{/*
nginx.routes: one location per route (the same on HTTP and HTTPS).
*/}}
{{- define "nginx.routes" -}}
{{- range $i, $r := .Values.routes }}
{{- if $i }}
{{ end }}
location {{ $r.path }} {
  proxy_pass http://{{ $r.upstream }}{{ $r.to }};
  {{- if $r.stream }}
  proxy_buffering off;
  proxy_cache off;
  {{- end }}
  proxy_http_version 1.1;
  proxy_set_header Host $host;
  proxy_set_header X-Real-IP $remote_addr;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_set_header X-Forwarded-Host $host;
  proxy_set_header Upgrade $http_upgrade;
  proxy_set_header Connection $connection_upgrade;
  proxy_read_timeout {{ $.Values.proxyReadTimeout }};
}
{{- end }}
{{- end }}
