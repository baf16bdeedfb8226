// Command qwen-demo runs the qwen-operator demo on one machine, with no cluster and no GPU
// (package internal/testutil/stack). `make demo` builds it and runs `qwen-demo up`; `make demo-down`
// runs `qwen-demo down`.
//
//	qwen-demo up       start everything, apply the samples, print the endpoint and commands
//	qwen-demo down     stop exactly the processes `up` started (their pids are in DIR/pids)
//	qwen-demo status   list the components and whether they run
//	qwen-demo gpu      set the simulated GPU: --temperature 92 [--utilization 80] [--memory 0.97]
//	qwen-demo kill C   kill one component with SIGKILL (as a crash would)
//	qwen-demo start C  start one component again (e.g. after kill)
//
// Every command takes --dir (default $QWEN_DEMO_DIR, else /tmp/qwen-demo). The components
// `controlplane` and `agent` are this binary too (`qwen-demo controlplane|agent --dir DIR`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/stack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "qwen-demo:", err)
		os.Exit(1)
	}
}

const usage = `usage: qwen-demo [--dir DIR] up|down|status|gpu|kill|start [args]
  up                 start the demo (components, samples) and print how to use it
  down               stop the processes the demo started
  status             show the components and their pids
  gpu --temperature C [--utilization P] [--memory F]
                     set the simulated GPU (DCGM metrics scraped by Prometheus)
  kill COMPONENT     SIGKILL one component; start COMPONENT brings it back
  start COMPONENT
components: ` + "controlplane, redis, engine, fallback, agent, prometheus, manager, gateway"

func run(args []string) error {
	fs := flag.NewFlagSet("qwen-demo", flag.ContinueOnError)
	dir := fs.String("dir", stack.DefaultDir(), "state directory (default $QWEN_DEMO_DIR, else /tmp/qwen-demo)")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	// A command may also take --dir after its name.
	sub := flag.NewFlagSet(cmd, flag.ContinueOnError)
	sub.StringVar(dir, "dir", *dir, "state directory")
	temp := sub.String("temperature", "", "GPU temperature, °C (gpu)")
	util := sub.String("utilization", "", "GPU utilization, % (gpu)")
	mem := sub.String("memory", "", "GPU memory used, 0..1 (gpu)")
	if err := sub.Parse(rest); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "up":
		return up(ctx, *dir)
	case "down":
		if err := stack.Down(*dir); err != nil {
			return err
		}
		fmt.Printf("qwen-operator demo stopped (logs kept in %s/logs)\n", *dir)
		return nil
	case "status":
		return status(ctx, *dir)
	case "gpu":
		s, err := stack.Load(*dir)
		if err != nil {
			return err
		}
		form := url.Values{}
		for k, v := range map[string]string{"temperature": *temp, "utilization": *util, "memory": *mem} {
			if v != "" {
				form.Set(k, v)
			}
		}
		if len(form) == 0 {
			return errors.New("gpu: set at least one of --temperature, --utilization, --memory")
		}
		g, err := stack.SetGPU(ctx, s, form)
		if err != nil {
			return err
		}
		fmt.Printf("GPU: %.1f °C, %.0f%% utilization, %.0f%% memory used\n", g.Temperature, g.Utilization, 100*g.Memory)
		return nil
	case "kill", "start":
		if sub.NArg() != 1 {
			return fmt.Errorf("%s: name one component (%s)", cmd, strings.Join(stack.Components, ", "))
		}
		s, err := stack.Attach(*dir)
		if err != nil {
			return err
		}
		if cmd == "kill" {
			return s.Kill(sub.Arg(0))
		}
		return s.Start(ctx, sub.Arg(0))
	case "controlplane":
		return stack.RunControlPlane(*dir)
	case "agent":
		return stack.RunAgent(*dir)
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

func up(ctx context.Context, dir string) error {
	s, err := stack.Up(ctx, stack.Options{Dir: dir, DefaultPorts: true, Log: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Print(s.Instructions())
	return nil
}

func status(ctx context.Context, dir string) error {
	s, err := stack.Attach(dir)
	if err != nil {
		return err
	}
	for _, c := range stack.Components {
		if pid, err := s.Pid(c); err == nil {
			fmt.Printf("%-13s running  pid %d\n", c, pid)
		} else {
			fmt.Printf("%-13s stopped\n", c)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := s.Kubectl(ctx, "get", "qs,rlp,dp", "-n", s.Namespace); err == nil {
		fmt.Print("\n" + out)
	}
	return nil
}
