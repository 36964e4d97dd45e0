package testimages

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"testing"
)

func TestLocalhostCert(t *testing.T) {
	cert, key, err := localhostCert()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatalf("not a usable key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	// The image digest must not change between builds.
	cert2, key2, err := localhostCert()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert, cert2) || !bytes.Equal(key, key2) {
		t.Error("two builds gave different certificates or keys")
	}
}
