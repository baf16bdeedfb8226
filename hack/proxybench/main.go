// Command proxybench compares the gateway's throughput with nginx's in front of
// llm-d-inference-sim on this machine (internal/testutil/proxybench) and prints a Markdown
// table for BENCHMARKS.md.
//
//	go run ./hack/proxybench [-c 32] [-duration 5s] [-rounds 2] [-profile /tmp/gw] [-gateway bin]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/qwenops/qwen-operator/internal/imagebuild"
	"github.com/qwenops/qwen-operator/internal/testutil/proxybench"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

func main() {
	c := flag.Int("c", 32, "concurrent closed-loop clients")
	d := flag.Duration("duration", 5*time.Second, "length of each measurement")
	rounds := flag.Int("rounds", 2, "rounds; each measures direct, nginx and the gateway, without and with streaming")
	gateway := flag.String("gateway", "", "a gateway binary to measure instead of the one make build builds here (for a before/after comparison)")
	profile := flag.String("profile", "", "save the gateway's CPU profiles of round 1 as PREFIX-plain.pprof and PREFIX-stream.pprof")
	flag.Parse()
	if err := run(*c, *d, *rounds, *profile, *gateway); err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(1)
	}
}

func run(c int, d time.Duration, rounds int, profile, gateway string) error {
	root, err := tools.RepoRoot()
	if err != nil {
		return err
	}
	if gateway == "" {
		bin := filepath.Join(root, "bin")
		if err := imagebuild.BuildBinaries(context.Background(), root, bin, ""); err != nil {
			return err
		}
		gateway = filepath.Join(bin, "gateway")
	}
	ms, err := proxybench.Run(context.Background(), proxybench.Options{
		Gateway: gateway, Concurrency: c, Duration: d, Rounds: rounds, Log: os.Stderr, Profile: profile,
	})
	if err != nil {
		return err
	}
	fmt.Print(proxybench.Summary(ms))
	return nil
}
