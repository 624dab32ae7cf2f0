package check

import (
	"context"
	"strings"
	"testing"

	"github.com/alt-platform/orchestration/internal/stack"
)

// entry is what TLS at the entry renders to in one profile: nginx-external's
// Certificate, TLS server, https ports and secret mount, and Kratos' public
// base URL.
type entry struct {
	cert       map[string]any // spec of Certificate alt-ingress/nginx-external; nil: none
	nginxConf  string         // nginx.conf of ConfigMap alt-ingress/nginx-external
	httpsPort  bool           // Service nginx-external has port 443 → https
	nodePort   float64        // its nodePort (0: none written)
	tlsMount   string         // Secret mounted at /etc/nginx/tls ("" none)
	kratosBase string         // serve.public.base_url of Kratos' config
}

func entryOf(t *testing.T, objs []*Object) entry {
	t.Helper()
	var e entry
	for _, o := range objs {
		spec, _ := o.Doc["spec"].(map[string]any)
		switch {
		case o.Kind == "Certificate" && o.Namespace == "alt-ingress" && o.Name == "nginx-external":
			e.cert = spec
		case o.Kind == "ConfigMap" && o.Namespace == "alt-ingress" && o.Name == "nginx-external":
			data, _ := o.Doc["data"].(map[string]any)
			e.nginxConf, _ = data["nginx.conf"].(string)
		case o.Kind == "Service" && o.Namespace == "alt-ingress" && o.Name == "nginx-external":
			ports, _ := spec["ports"].([]any)
			for _, p := range ports {
				p, _ := p.(map[string]any)
				if p["port"] == float64(443) && p["targetPort"] == "https" {
					e.httpsPort = true
					e.nodePort, _ = p["nodePort"].(float64)
				}
			}
		case o.Kind == "Deployment" && o.Namespace == "alt-ingress" && o.Name == "nginx-external":
			tmpl, _ := spec["template"].(map[string]any)
			pod, _ := tmpl["spec"].(map[string]any)
			mounted := map[string]bool{}
			containers, _ := pod["containers"].([]any)
			for _, c := range containers {
				c, _ := c.(map[string]any)
				mounts, _ := c["volumeMounts"].([]any)
				for _, m := range mounts {
					m, _ := m.(map[string]any)
					if m["mountPath"] == "/etc/nginx/tls" {
						mounted[m["name"].(string)] = true
					}
				}
			}
			vols, _ := pod["volumes"].([]any)
			for _, v := range vols {
				v, _ := v.(map[string]any)
				if sec, ok := v["secret"].(map[string]any); ok && mounted[v["name"].(string)] {
					e.tlsMount, _ = sec["secretName"].(string)
				}
			}
		case o.Kind == "ConfigMap" && o.Namespace == "alt-auth" && o.Name == "kratos-config":
			data, _ := o.Doc["data"].(map[string]any)
			conf, _ := data["kratos.yml"].(string)
			for _, line := range strings.Split(conf, "\n") {
				// serve.public.base_url is the first base_url.
				if b, ok := strings.CutPrefix(strings.TrimSpace(line), "base_url: "); ok && e.kratosBase == "" {
					e.kratosBase = b
				}
			}
		}
	}
	return e
}

// With cert-manager deployed (the static checks' Render: ALT_CERT_MANAGER=on),
// every profile terminates HTTPS at nginx-external with a Certificate from
// the platform CA, and Kratos' public URL is https.
func TestTLSAtTheEntryWithCertManager(t *testing.T) {
	helm, r := tool(t, "helm")
	s, err := stack.Load(platform(t))
	if err != nil {
		t.Fatal(err)
	}
	var layers []*stack.Layer
	for _, l := range s.Layers {
		if l.Name == "alt-auth-platform" || l.Name == "alt-application" {
			layers = append(layers, l)
		}
	}
	s.Layers = layers
	rendered, err := Render(context.Background(), r, s, helm, "dev", "staging", "prod")
	if err != nil {
		t.Fatal(err)
	}
	for profile, want := range map[string]struct {
		host, kratos string
		nodePort     float64
		redirect     bool
	}{
		"dev":     {"localhost", "https://localhost/ory/", 30443, false},
		"staging": {"staging.alt.example.com", "https://staging.alt.example.com/ory/", 0, true},
		"prod":    {"alt.example.com", "https://alt.example.com/ory/", 0, true},
	} {
		var objs []*Object
		for _, rd := range rendered {
			if rd.Profile == profile {
				objs = append(objs, rd.Objects...)
			}
		}
		e := entryOf(t, objs)
		if e.cert == nil {
			t.Errorf("%s: no Certificate alt-ingress/nginx-external", profile)
			continue
		}
		issuer, _ := e.cert["issuerRef"].(map[string]any)
		if issuer["kind"] != "ClusterIssuer" || issuer["name"] != "alt-ca" || issuer["group"] != "cert-manager.io" {
			t.Errorf("%s: the Certificate's issuer is %v, want ClusterIssuer alt-ca", profile, issuer)
		}
		secret, _ := e.cert["secretName"].(string)
		if dns, _ := e.cert["dnsNames"].([]any); len(dns) != 1 || dns[0] != want.host {
			t.Errorf("%s: the Certificate is for %v, want %s", profile, dns, want.host)
		}
		if secret == "" || e.tlsMount != secret {
			t.Errorf("%s: nginx mounts Secret %q at /etc/nginx/tls; the Certificate writes %q", profile, e.tlsMount, secret)
		}
		// The HTTPS server: from its listen line on.
		_, https, ok := strings.Cut(e.nginxConf, "listen 8443 ssl;")
		for _, line := range []string{"ssl_certificate /etc/nginx/tls/tls.crt;", "ssl_certificate_key /etc/nginx/tls/tls.key;", "location = /nginx-health", "location /ory/ {", "location / {"} {
			if !ok || !strings.Contains(https, line) {
				t.Errorf("%s: nginx.conf has no HTTPS server (listen 8443 ssl) with %q:\n%s", profile, line, e.nginxConf)
			}
		}
		if got := strings.Contains(e.nginxConf, "return 308 https://$host$request_uri;"); got != want.redirect {
			t.Errorf("%s: plain HTTP redirects to HTTPS: %v, want %v", profile, got, want.redirect)
		}
		if !strings.Contains(e.nginxConf, "location = /nginx-health") {
			t.Errorf("%s: nginx.conf lost /nginx-health", profile)
		}
		if !e.httpsPort || e.nodePort != want.nodePort {
			t.Errorf("%s: Service port 443 → https: %v, nodePort %v; want nodePort %v", profile, e.httpsPort, e.nodePort, want.nodePort)
		}
		if e.kratosBase != want.kratos {
			t.Errorf("%s: Kratos' public base_url is %q, want %q", profile, e.kratosBase, want.kratos)
		}
	}
}

// With ALT_CERT_MANAGER=off, as Skaffold itself renders it (its
// conditional profiles and the value template): no Certificate, no TLS
// server, no https port in dev, staging or prod; dev's Kratos is
// http://localhost, staging keeps its https site URL (TLS then ends in
// front of nginx-external).
func TestTLSAtTheEntryLeftOutWithoutCertManager(t *testing.T) {
	skaffold, r := tool(t, "skaffold")
	tool(t, "helm") // skaffold runs it from the tools cache (r's PATH)
	s, err := stack.Load(platform(t))
	if err != nil {
		t.Fatal(err)
	}
	for profile, kratos := range map[string]string{"dev": "http://localhost/ory/", "staging": "https://staging.alt.example.com/ory/"} {
		objs, _, err := SkaffoldRender(context.Background(), r, s, skaffold, profile)
		if err != nil {
			t.Fatal(err)
		}
		e := entryOf(t, objs)
		if e.nginxConf == "" {
			t.Fatalf("%s: skaffold render has no ConfigMap alt-ingress/nginx-external", profile)
		}
		if e.cert != nil || e.httpsPort || e.tlsMount != "" || strings.Contains(e.nginxConf, "ssl") {
			t.Errorf("%s, cert-manager off: Certificate %v, https port %v, TLS mount %q, nginx.conf:\n%s", profile, e.cert, e.httpsPort, e.tlsMount, e.nginxConf)
		}
		if e.kratosBase != kratos {
			t.Errorf("%s, cert-manager off: Kratos' public base_url is %q, want %q", profile, e.kratosBase, kratos)
		}
	}
}
