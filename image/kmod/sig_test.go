package kmod

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/signed.ko and keyid.ko are a one-line file signed by the
// kernel's scripts/sign-file (sha512 by issuer and serial; sha256 with -k,
// by key id) with a throwaway key whose certificate is test.x509; the
// private key was not kept. other.x509 is another throwaway key's.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyModule(t *testing.T) {
	cert, err := ReadCertificate(filepath.Join("testdata", "test.x509"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := ReadCertificate(filepath.Join("testdata", "other.x509"))
	if err != nil {
		t.Fatal(err)
	}
	const content = "not an ELF, but sign-file signs any file\n"
	for _, name := range []string{"signed.ko", "keyid.ko"} {
		t.Run(name, func(t *testing.T) {
			mod := readTestdata(t, name)
			s, err := ParseSignature(mod)
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Content) != content {
				t.Errorf("content = %q", s.Content)
			}
			if err := VerifyModule(mod, cert); err != nil {
				t.Errorf("with its own key: %v", err)
			}
			if err := VerifyModule(mod, other); err == nil || !strings.Contains(err.Error(), "not by the certificate's key") {
				t.Errorf("with another key: %v, want 'not by the certificate's key'", err)
			}
			tampered := bytes.Clone(mod)
			tampered[3] ^= 1
			if err := VerifyModule(tampered, cert); err == nil || !strings.Contains(err.Error(), "does not verify") {
				t.Errorf("tampered content: %v, want 'does not verify'", err)
			}
		})
	}
	if err := VerifyModule([]byte(content), cert); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: %v, want ErrUnsigned", err)
	}
	if _, err := ParseSignature([]byte("x" + SigMarker)); err == nil {
		t.Error("truncated signature parsed")
	}
}

// TestVerifyKernelSignFile signs a file with the built kernel's own
// sign-file and key when the kernel is built.
func TestVerifyKernelSignFile(t *testing.T) {
	build := filepath.Join("..", "..", "build")
	signFile := filepath.Join(build, "kernel-obj", "scripts", "sign-file")
	key := filepath.Join(build, "kernel-keys", "signing_key.pem")
	for _, p := range []string{signFile, key} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("no built kernel: %v", err)
		}
	}
	mod := filepath.Join(t.TempDir(), "m.ko")
	if err := os.WriteFile(mod, []byte("module body"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(signFile, "sha512", key, filepath.Join(build, "kernel-keys", "signing_key.x509"), mod).CombinedOutput(); err != nil {
		t.Fatalf("sign-file: %v\n%s", err, out)
	}
	cert, err := ReadCertificate(key) // the PEM holds key and certificate
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyModule(b, cert); err != nil {
		t.Fatal(err)
	}
}
