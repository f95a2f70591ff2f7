package kmod

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"

	_ "crypto/sha1" // digest algorithms a module signature may name
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// SigMarker ends a signed kernel module.
const SigMarker = "~Module signature appended~\n"

// ErrUnsigned means a module carries no appended signature.
var ErrUnsigned = errors.New("module is not signed")

// pkeyIDPKCS7 is module_signature.id_type for a PKCS#7 (CMS) signature,
// the only kind the kernel accepts.
const pkeyIDPKCS7 = 2

// Signature is a module's appended signature as scripts/sign-file writes
// it: PKCS#7 SignedData with a detached content (the module before the
// signature), then struct module_signature and SigMarker.
type Signature struct {
	Content []byte // the signed bytes: the module without its signature
	Digest  crypto.Hash
	// The signer: an issuer and serial number, or a subject key identifier.
	Issuer []byte // DER Name
	Serial *big.Int
	KeyID  []byte
	sig    []byte
	attrs  []byte // authenticated attributes (DER, as a SET), if any
}

// Signer names the signer for messages.
func (s *Signature) Signer() string {
	if s.KeyID != nil {
		return fmt.Sprintf("key id %x", s.KeyID)
	}
	var name pkix.RDNSequence
	if _, err := asn1.Unmarshal(s.Issuer, &name); err == nil {
		var n pkix.Name
		n.FillFromRDNSequence(&name)
		return fmt.Sprintf("%q serial %x", n.String(), s.Serial)
	}
	return fmt.Sprintf("serial %x", s.Serial)
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	ContentInfo      asn1.RawValue
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type signerInfo struct {
	Version         int
	SID             asn1.RawValue
	DigestAlgorithm pkix.AlgorithmIdentifier
	AuthAttrs       asn1.RawValue `asn1:"optional,tag:0"`
	SigAlgorithm    pkix.AlgorithmIdentifier
	Signature       []byte
	UnauthAttrs     asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue
}

var (
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	digestByOID      = map[string]crypto.Hash{
		"1.3.14.3.2.26":          crypto.SHA1,
		"2.16.840.1.101.3.4.2.4": crypto.SHA224,
		"2.16.840.1.101.3.4.2.1": crypto.SHA256,
		"2.16.840.1.101.3.4.2.2": crypto.SHA384,
		"2.16.840.1.101.3.4.2.3": crypto.SHA512,
	}
)

// ParseSignature splits a module into its content and its signature.
// It returns ErrUnsigned when the module has no signature marker.
func ParseSignature(module []byte) (*Signature, error) {
	if !bytes.HasSuffix(module, []byte(SigMarker)) {
		return nil, ErrUnsigned
	}
	rest := module[:len(module)-len(SigMarker)]
	if len(rest) < 12 {
		return nil, errors.New("module signature: truncated")
	}
	info := rest[len(rest)-12:]
	rest = rest[:len(rest)-12]
	if info[2] != pkeyIDPKCS7 {
		return nil, fmt.Errorf("module signature: id type %d, want PKCS#7 (%d)", info[2], pkeyIDPKCS7)
	}
	n := int(binary.BigEndian.Uint32(info[8:]))
	if n <= 0 || n > len(rest) {
		return nil, fmt.Errorf("module signature: length %d does not fit the module", n)
	}
	s := &Signature{Content: rest[:len(rest)-n]}
	if err := s.parsePKCS7(rest[len(rest)-n:]); err != nil {
		return nil, fmt.Errorf("module signature: %w", err)
	}
	return s, nil
}

func (s *Signature) parsePKCS7(der []byte) error {
	var ci contentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil {
		return fmt.Errorf("PKCS#7: %w", err)
	} else if len(rest) > 0 {
		return errors.New("PKCS#7: trailing bytes")
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return fmt.Errorf("PKCS#7 content type %v, want signedData", ci.ContentType)
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return fmt.Errorf("PKCS#7 SignedData: %w", err)
	}
	if len(sd.SignerInfos) != 1 {
		return fmt.Errorf("PKCS#7: %d signers, want 1", len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	h, ok := digestByOID[si.DigestAlgorithm.Algorithm.String()]
	if !ok {
		return fmt.Errorf("digest algorithm %v not supported", si.DigestAlgorithm.Algorithm)
	}
	s.Digest, s.sig = h, si.Signature
	switch {
	case si.SID.Class == asn1.ClassUniversal && si.SID.Tag == asn1.TagSequence:
		var is issuerAndSerial
		if _, err := asn1.Unmarshal(si.SID.FullBytes, &is); err != nil {
			return fmt.Errorf("PKCS#7 signer: %w", err)
		}
		s.Issuer, s.Serial = is.Issuer.FullBytes, is.Serial
	case si.SID.Class == asn1.ClassContextSpecific && si.SID.Tag == 0:
		s.KeyID = si.SID.Bytes
	default:
		return errors.New("PKCS#7 signer: neither issuer and serial nor key identifier")
	}
	if len(si.AuthAttrs.FullBytes) > 0 {
		// Signed as a SET OF, though stored with an implicit [0] tag.
		set := append([]byte(nil), si.AuthAttrs.FullBytes...)
		set[0] = 0x31
		s.attrs = set
	}
	return nil
}

// Verify checks that cert's key made the signature over s.Content.
func (s *Signature) Verify(cert *x509.Certificate) error {
	if s.KeyID != nil {
		if !bytes.Equal(s.KeyID, cert.SubjectKeyId) {
			return fmt.Errorf("signed by %s, not by the certificate's key (key id %x)", s.Signer(), cert.SubjectKeyId)
		}
	} else if !bytes.Equal(s.Issuer, cert.RawIssuer) || s.Serial.Cmp(cert.SerialNumber) != 0 {
		return fmt.Errorf("signed by %s, not by the certificate's key (%q serial %x)", s.Signer(), cert.Issuer.String(), cert.SerialNumber)
	}
	if !s.Digest.Available() {
		return fmt.Errorf("digest %v not available", s.Digest)
	}
	h := s.Digest.New()
	h.Write(s.Content)
	digest := h.Sum(nil)
	if s.attrs != nil {
		if err := checkMessageDigest(s.attrs, digest); err != nil {
			return err
		}
		h := s.Digest.New()
		h.Write(s.attrs)
		digest = h.Sum(nil)
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, s.Digest, digest, s.sig); err != nil {
			return fmt.Errorf("signature does not verify with the certificate's key: %w", err)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, s.sig) {
			return errors.New("signature does not verify with the certificate's key")
		}
	default:
		return fmt.Errorf("certificate key type %T not supported", cert.PublicKey)
	}
	return nil
}

// checkMessageDigest finds the messageDigest attribute and compares it.
func checkMessageDigest(set []byte, digest []byte) error {
	var attrs []attribute
	if _, err := asn1.UnmarshalWithParams(set, &attrs, "set"); err != nil {
		return fmt.Errorf("signed attributes: %w", err)
	}
	for _, a := range attrs {
		if !a.Type.Equal(oidMessageDigest) {
			continue
		}
		var vals []asn1.RawValue
		if _, err := asn1.UnmarshalWithParams(a.Values.FullBytes, &vals, "set"); err != nil || len(vals) != 1 {
			return errors.New("signed attributes: bad messageDigest")
		}
		if !bytes.Equal(vals[0].Bytes, digest) {
			return errors.New("signed attributes: messageDigest does not match the module")
		}
		return nil
	}
	return errors.New("signed attributes without messageDigest")
}

// VerifyModule checks that module (ELF bytes, decompressed) is signed by
// cert's key.
func VerifyModule(module []byte, cert *x509.Certificate) error {
	s, err := ParseSignature(module)
	if err != nil {
		return err
	}
	return s.Verify(cert)
}

// ReadCertificate reads an X.509 certificate in DER or PEM (the first
// CERTIFICATE block, as in the kernel's signing_key.pem).
func ReadCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("module signing certificate: %w", err)
	}
	der := b
	if bytes.Contains(b, []byte("-----BEGIN")) {
		der = nil
		for rest := b; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type == "CERTIFICATE" {
				der = blk.Bytes
				break
			}
		}
		if der == nil {
			return nil, fmt.Errorf("module signing certificate %s: no CERTIFICATE block", path)
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("module signing certificate %s: %w", path, err)
	}
	return c, nil
}
