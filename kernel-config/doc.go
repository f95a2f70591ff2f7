// Package kernelconfig holds Kwyre's own kernel: kwyre.config (the fragment
// applied over tinyconfig of Debian's linux-source-6.1), kspp.list (the KSPP
// recommendations met and missed), build.sh and check.sh, and a test that
// boots the built kernel in QEMU.
package kernelconfig
