// Command pause is the sandbox ("pause") container of the real-node tests' pods: it holds the
// pod's namespaces, reaps any child it inherits, and exits 0 on SIGTERM or SIGINT. `make
// images` packs it as qwenops.local/pause (containerd's sandbox_image there).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
