package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

func TestResolveFlag(t *testing.T) {
	f, err := parseFlags([]string{"--config", "c", "--resolve", "qwen3-engine.ai.svc:8000=127.0.0.1:8001",
		"--resolve", "qwen3-fallback.ai.svc:8000=127.0.0.1:8002"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := "qwen3-engine.ai.svc:8000=127.0.0.1:8001,qwen3-fallback.ai.svc:8000=127.0.0.1:8002"; f.resolve.String() != want {
		t.Fatalf("resolve = %s, want %s", f.resolve, want)
	}
	for _, bad := range []string{"qwen3-engine.ai.svc:8000", "qwen3-engine.ai.svc=127.0.0.1:8001", "h:1=127.0.0.1", "=127.0.0.1:1", "h:1=:2"} {
		if _, err := parseFlags([]string{"--config", "c", "--resolve", bad}, io.Discard); err == nil {
			t.Errorf("--resolve %q accepted", bad)
		}
	}
}

// TestResolveAndListen runs the gateway as the local demo does: the config names the engine by
// its cluster DNS name and listen addresses that are taken; --resolve reaches the local
// simulator and --listen and --admin-listen serve on loopback instead.
func TestResolveAndListen(t *testing.T) {
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B"})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenAdmin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer takenAdmin.Close()
	c := newConfigDir(t, fmt.Sprintf("listen: %q\nadminListen: %q\nupstream: {url: 'http://qwen3-engine.ai.svc:8000', model: Qwen3-1.7B}\n", taken.Addr(), takenAdmin.Addr()))
	p := start(t, context.Background(), "--config", c.path(), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--resolve", "qwen3-engine.ai.svc:8000="+strings.TrimPrefix(sim.URL, "http://"))
	if !strings.HasPrefix(p.addr, "127.0.0.1:") || p.addr == taken.Addr().String() || p.admin == takenAdmin.Addr().String() {
		t.Fatalf("serving on %s, admin %s", p.addr, p.admin)
	}
	if resp, body := chat(t, p.addr, false); resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Upstream") != "primary" {
		t.Fatalf("chat through --resolve: %d %s", resp.StatusCode, body)
	}
}
