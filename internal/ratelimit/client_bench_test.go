package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// BenchmarkRedisClient chooses the Redis client library on measurement: the same decision
// (one EVALSHA of decide.lua: a Hybrid rule on one of 1 000 keys, on the server's clock) from
// 64 (and 8) closed-loop callers through go-redis (a pool of connections, one command in
// flight on each) and through rueidis (automatic pipelining: concurrent commands share a few
// connections and are written and read in batches), with rueidis's defaults and with the
// gateway's FlushDelay (20 µs, more commands per write). Besides decisions/s and latency, and
// the CPU a decision costs the client and the server (see cpuMeter), it reports
// the round trips per decision: every command Redis ran (INFO commandstats) but those the
// script runs inside it, which must be exactly 1.
func BenchmarkRedisClient(b *testing.B) {
	srv := redisserver.Start(b)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:{client-%04d}", i)
	}
	p := params{alg: algHybrid, limit: 1_000_000, window: 60_000_000, burst: 1_000_000}
	args := (&Redis{}).args("allow", &p, 1, time.Time{}, 0) // on the server's clock
	anyArgs := []any{args[0], args[1], args[2]}
	gr := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 128, ContextTimeoutEnabled: true, DisableIdentity: true})
	defer gr.Close()
	newRu := func(flush time.Duration) rueidis.Client {
		ru, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true,
			DisableRetry: true, ForceSingleClient: true, MaxFlushDelay: flush})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(ru.Close)
		return ru
	}
	ru, ruFlush := newRu(0), newRu(FlushDelay)
	grScript, ruScript := redis.NewScript(decideSrc), rueidis.NewLuaScript(decideSrc)
	clients := []struct {
		name   string
		decide func(ctx context.Context, key string) error
	}{
		{"go-redis", func(ctx context.Context, key string) error {
			return grScript.Run(ctx, gr, []string{key}, anyArgs...).Err()
		}},
		{"rueidis", func(ctx context.Context, key string) error {
			return ruScript.Exec(ctx, ru, []string{key}, args).Error()
		}},
		{"rueidis-flush20us", func(ctx context.Context, key string) error {
			return ruScript.Exec(ctx, ruFlush, []string{key}, args).Error()
		}},
	}
	for _, callers := range []int{64, 8} {
		for _, c := range clients {
			b.Run(fmt.Sprintf("%s/callers=%d", c.name, callers), func(b *testing.B) {
				if err := c.decide(context.Background(), keys[0]); err != nil { // the script is loaded
					b.Fatal(err)
				}
				srv.ResetStats()
				cpu := startCPU(srv)
				decisions, elapsed, lat := closedLoop(b, callers, func(i int) error {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					defer cancel()
					return c.decide(ctx, keys[i%len(keys)])
				})
				cpu.report(b, decisions)
				reportLatency(b, decisions, elapsed, lat)
				b.ReportMetric(float64(roundTrips(srv))/float64(decisions), "round-trips/decision")
			})
		}
	}
}

// cpuMeter measures the CPU time this process and a Redis server use over a run: on a
// machine shared with other work the throughput depends on what else runs, but the CPU a
// decision costs does not, and 2 cores ÷ (client + server CPU per decision) is what these
// two cores could decide on their own.
type cpuMeter struct {
	srv            *redisserver.Server
	client, server time.Duration
}

func startCPU(srv *redisserver.Server) *cpuMeter {
	return &cpuMeter{srv: srv, client: processCPU(), server: srv.CPUTime()}
}

// report adds client-cpu-µs/decision, server-cpu-µs/decision and capacity/s (2 cores).
func (m *cpuMeter) report(b *testing.B, decisions int) {
	client := float64(processCPU()-m.client) / 1e3 / float64(decisions)
	server := float64(m.srv.CPUTime()-m.server) / 1e3 / float64(decisions)
	b.ReportMetric(client, "client-cpu-µs/decision")
	b.ReportMetric(server, "server-cpu-µs/decision")
	b.ReportMetric(2e6/(client+server), "capacity/s")
}

// processCPU is this process's CPU time (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// closedLoop runs b.N calls of call from callers goroutines, each starting its next call the
// moment the last returns, and returns how many ran, the wall time, and every latency.
func closedLoop(b *testing.B, callers int, call func(i int) error) (int, time.Duration, []time.Duration) {
	procs := runtime.GOMAXPROCS(0)
	var (
		mu  sync.Mutex
		all []time.Duration
		seq atomic.Int64
	)
	b.SetParallelism((callers + procs - 1) / procs)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 4096)
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			i++
			t := time.Now()
			if err := call(i); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	return len(all), elapsed, all
}

func reportLatency(b *testing.B, n int, elapsed time.Duration, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "decisions/s")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
	}
}

// scriptCommands are the commands the limiter's scripts run inside Redis: INFO commandstats
// counts them, but they cost no round trip.
var scriptCommands = map[string]bool{"get": true, "set": true, "del": true, "time": true,
	"zremrangebyscore": true, "zcard": true, "zadd": true, "zrange": true, "pexpire": true}

// roundTrips is the number of commands clients sent Redis since the last ResetStats, not
// counting CONFIG RESETSTAT, the INFO that asks, nor PING: rueidis pings a connection that
// received nothing for a second, whatever the traffic.
func roundTrips(srv *redisserver.Server) int64 {
	var n int64
	for cmd, calls := range srv.CommandStats() {
		if !scriptCommands[cmd] && cmd != "config|resetstat" && cmd != "ping" {
			n += calls
		}
	}
	return n
}
