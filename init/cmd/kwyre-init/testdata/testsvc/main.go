// Command testsvc stands in for a Kwyre service in kwyre-init's QEMU test:
// it prints what init gave it (ids, privileges, network devices, API key),
// can report an intrusion on fd 3 like the watchdog, and says when it gets
// SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	name := flag.String("name", "svc", "service name to print")
	key := flag.String("key", "", "API key file to read")
	reportAfter := flag.Duration("report-after", 0, "write an intrusion report to fd 3 after this long")
	exitAfter := flag.Duration("exit-after", 0, "crash (exit status 3) after this long")
	show := flag.String("show", "", "print this file after the status line")
	flag.Parse()
	// Before the status line: the QEMU test sends SIGTERM once it sees it.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)

	status, _ := os.ReadFile("/proc/self/status")
	field := func(k string) string {
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, k+":"); ok {
				return strings.Join(strings.Fields(v), ",")
			}
		}
		return "?"
	}
	var devs []string
	netdev, _ := os.ReadFile("/proc/self/net/dev")
	for _, l := range strings.Split(string(netdev), "\n")[2:] {
		if d, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			devs = append(devs, d)
		}
	}
	sort.Strings(devs)
	keyNote := "none"
	if *key != "" {
		b, err := os.ReadFile(*key)
		if err != nil {
			keyNote = "error"
		} else {
			keyNote = fmt.Sprintf("ok(%d)", len(strings.TrimSpace(string(b))))
		}
	}
	fmt.Printf("testsvc %s: uid=%s gid=%s groups=[%s] nnp=%s capeff=%s capamb=%s capbnd=%s netdevs=%s key=%s env=%s\n",
		*name, field("Uid"), field("Gid"), field("Groups"), field("NoNewPrivs"), field("CapEff"),
		field("CapAmb"), field("CapBnd"), strings.Join(devs, ","), keyNote, strings.Join(os.Environ(), ","))

	if *show != "" {
		b, err := os.ReadFile(*show)
		fmt.Printf("testsvc %s: %s: %s (%v)\n", *name, *show, strings.TrimSpace(string(b)), err)
	}
	if *reportAfter > 0 {
		go func() {
			time.Sleep(*reportAfter)
			f := os.NewFile(3, "report")
			fmt.Fprintln(f, `{"scanner":"test","what":"simulated intrusion"}`)
		}()
	}
	if *exitAfter > 0 {
		go func() {
			time.Sleep(*exitAfter)
			fmt.Printf("testsvc %s: crashing\n", *name)
			os.Exit(3)
		}()
	}
	<-sig
	fmt.Printf("testsvc %s: SIGTERM\n", *name)
}
