package sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certSpec is one certificate signed by the cluster CA.
type certSpec struct {
	name   string // file stem under pki/
	cn     string
	orgs   []string
	server bool // also a serving certificate for the SANs below
	client bool
	dns    []string
	ips    []net.IP
}

// certs are every certificate of the cluster. Components get one
// certificate that serves their secure port and authenticates them to the
// API server.
func certs(serviceIP net.IP) []certSpec {
	loop := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	return []certSpec{
		{name: "kube-apiserver", cn: "kube-apiserver", server: true,
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			ips: append([]net.IP{serviceIP}, loop...)},
		{name: "admin", cn: "alt-sim-admin", orgs: []string{"system:masters"}, client: true},
		// In system:masters: its controllers use its identity (no
		// --use-service-account-credentials), and the bootstrap role of
		// system:kube-controller-manager alone cannot even read nodes.
		{name: "kube-controller-manager", cn: "system:kube-controller-manager", orgs: []string{"system:masters"}, client: true, server: true, dns: []string{"localhost"}, ips: loop},
		{name: "kube-scheduler", cn: "system:kube-scheduler", client: true, server: true, dns: []string{"localhost"}, ips: loop},
		// The simulation machinery acts for every kubelet and storage driver.
		{name: "kwok", cn: "alt-sim-kwok", orgs: []string{"system:masters"}, client: true},
		{name: "provisioner", cn: "alt-sim-provisioner", orgs: []string{"system:masters"}, client: true},
	}
}

// pki holds the file names of the cluster's keys and certificates.
type pki struct{ dir string }

func (p pki) crt(name string) string { return filepath.Join(p.dir, name+".crt") }
func (p pki) key(name string) string { return filepath.Join(p.dir, name+".key") }
func (p pki) saKey() string          { return filepath.Join(p.dir, "sa.key") }
func (p pki) saPub() string          { return filepath.Join(p.dir, "sa.pub") }

// ensure generates what is missing: the CA, the service-account key pair
// and every certificate. Existing files are kept, so the CA and the
// service-account key stay the same for the life of the cluster.
func (p pki) ensure(serviceIP net.IP) error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	caCert, caKey, err := p.ensureCA()
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	if !exists(p.saKey()) || !exists(p.saPub()) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			return err
		}
		if err := writeKey(p.saKey(), k); err != nil {
			return err
		}
		if err := writePEM(p.saPub(), "PUBLIC KEY", pub, 0o644); err != nil {
			return err
		}
	}
	for _, s := range certs(serviceIP) {
		if exists(p.crt(s.name)) && exists(p.key(s.name)) {
			continue
		}
		if err := p.issue(s, caCert, caKey); err != nil {
			return fmt.Errorf("certificate %s: %w", s.name, err)
		}
	}
	return nil
}

func (p pki) ensureCA() (*x509.Certificate, crypto.Signer, error) {
	if exists(p.crt("ca")) && exists(p.key("ca")) {
		return loadPair(p.crt("ca"), p.key("ca"))
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "alt-sim-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	if err := writeKey(p.key("ca"), k); err != nil {
		return nil, nil, err
	}
	if err := writePEM(p.crt("ca"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, k, err
}

func (p pki) issue(s certSpec, ca *x509.Certificate, caKey crypto.Signer) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	if s.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writeKey(p.key(s.name), k); err != nil {
		return err
	}
	return writePEM(p.crt(s.name), "CERTIFICATE", der, 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func writeKey(path string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func loadPair(crtPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	cb, err := os.ReadFile(crtPath)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cblock, _ := pem.Decode(cb)
	kblock, _ := pem.Decode(kb)
	if cblock == nil || kblock == nil {
		return nil, nil, errors.New("not PEM: " + crtPath + " or " + keyPath + "; run `mage sim:reset` for a new cluster")
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kblock.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeFileAtomic writes through a temporary file and a rename, so a
// reader never sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
