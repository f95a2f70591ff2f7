// Command kwyre-manifest generates and verifies the appliance's file
// manifest, with the same code init runs at boot:
//
//	kwyre-manifest generate DIR > MANIFEST
//	kwyre-manifest verify -manifest MANIFEST DIR
//
// verify lists every difference and exits 1 when there is one; bad usage or
// an unreadable manifest exits 2.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kwyre/kwyre/init/manifest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kwyre-manifest generate DIR > MANIFEST")
	fmt.Fprintln(w, "       kwyre-manifest verify -manifest MANIFEST DIR")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "generate":
		return generate(args[1:], stdout, stderr)
	case "verify":
		return verify(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "kwyre-manifest: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func generate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		usage(stderr)
		return 2
	}
	bw := bufio.NewWriter(stdout)
	if err := manifest.Generate(fs.Arg(0), bw); err != nil {
		fmt.Fprintf(stderr, "kwyre-manifest: %v\n", err)
		return 1
	}
	if err := bw.Flush(); err != nil {
		fmt.Fprintf(stderr, "kwyre-manifest: write: %v\n", err)
		return 1
	}
	return 0
}

func verify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mpath := fs.String("manifest", "", "manifest file to check DIR against")
	quiet := fs.Bool("q", false, "print only differences")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *mpath == "" {
		usage(stderr)
		return 2
	}
	f, err := os.Open(*mpath)
	if err != nil {
		fmt.Fprintf(stderr, "kwyre-manifest: %v\n", err)
		return 2
	}
	defer f.Close()
	res, err := manifest.Verify(fs.Arg(0), f)
	for _, d := range res.Differences {
		fmt.Fprintln(stdout, d)
	}
	switch {
	case errors.Is(err, manifest.ErrMismatch):
		fmt.Fprintf(stderr, "kwyre-manifest: %s: %v\n", fs.Arg(0), err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "kwyre-manifest: %v\n", err)
		return 2
	}
	if !*quiet {
		fmt.Fprintf(stdout, "ok: %d files, %d bytes, %.3fs, manifest sha256 %s\n",
			res.Files, res.Bytes, res.Duration.Seconds(), res.ManifestSHA256)
	}
	return 0
}
