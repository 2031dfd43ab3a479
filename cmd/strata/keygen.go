package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
)

var keygenUsage = usage{
	synopsis: "--out FILE [--force]",
	about: `
Makes an Ed25519 key pair for a group's publisher. The private key goes to
--out (PKCS #8 in PEM, mode 0600, the format 'openssl genpkey -algorithm
ed25519' writes, which 'strata publish --key' also accepts); the public key
is printed on stdout in the encoding group specifiers use (unpadded
base64url, 43 characters), ready for the option publisher=KEY. Only the
holder of the private key can then publish in that group.`,
	examples: []string{
		"KEY=$(strata keygen --out publisher.key)",
		"strata publish --key publisher.key --group \"strata:group/tv?multicast&publisher=$KEY\" --bootstrap 127.0.0.1:1935 < video.ts",
	},
}

func runKeygen(ctx context.Context, e *env, path string, args []string) int {
	fset := flag.NewFlagSet(path, flag.ContinueOnError)
	out := fset.String("out", "", "write the private key to `FILE` (required)")
	force := fset.Bool("force", false, "overwrite --out if it exists")
	pos, code, ok := parseFlags(e, path, fset, keygenUsage, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) > 0:
		return usageErr(e, path, "unexpected argument %q (the file goes in --out)", pos[0])
	case *out == "":
		return usageErr(e, path, "missing --out FILE for the private key")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return failErr(e, path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return failErr(e, path, err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(*out, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return failErr(e, path, fmt.Errorf("%s exists: choose another --out, or add --force to replace the key in it", *out))
	}
	if err != nil {
		return failErr(e, path, err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return failErr(e, path, fmt.Errorf("writing %s: %w", *out, err))
	}
	fmt.Fprintln(e.stdout, base64.RawURLEncoding.EncodeToString(pub))
	return exitOK
}

// loadPrivateKey reads an Ed25519 private key in PKCS #8 PEM (as keygen
// writes it).
func loadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM \"PRIVATE KEY\" (make one with 'strata keygen --out %s')", path, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, want an Ed25519 key", path, k)
	}
	return priv, nil
}
