package stack

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Instructions is what `make demo` prints once the demo is up: where everything is and
// commands to paste into a shell.
func (s *State) Instructions() string {
	gpuTemp := filepath.Join(s.Root, "hack", "demo", "gpu-temp")
	chat := func(extra string) string {
		return fmt.Sprintf(`$QWEN_URL/chat/completions -H 'Content-Type: application/json' -d '{"model":"%s",%s"messages":[{"role":"user","content":"hi"}]}'`, s.Model, extra)
	}
	r := strings.NewReplacer(
		"$GPUTEMP", gpuTemp,
		"$NAME", s.Name,
		"$MODEL", s.Model,
		"$FALLBACK", s.FallbackModel,
		"$CHAT_STREAM", chat(`"stream":true,`),
		"$CHAT", chat(`"max_tokens":8,`),
	)
	return r.Replace(fmt.Sprintf(`
qwen-operator demo is up. State, logs and pid files: %[1]s; stop it with `+"`make demo-down`"+`.

  endpoint     %[2]s   (model %[3]s, fallback %[4]s; OpenAI-compatible)
  kubeconfig   %[5]s   (namespace %[6]s)
  prometheus   %[7]s
  GPU exporter %[8]s/metrics   (set it with %[9]s)
  logs         %[1]s/logs/   (requests.log: each request as the engines received it)

Paste into a shell:

  source %[1]s/env          # KUBECONFIG, kubectl on PATH, $QWEN_URL, $QWEN_ENGINE, $QWEN_GPU
  kubectl get qs,rlp,dp,deploy,svc,cm

# 1. Chat, streaming (thinking off, as the seed's client sends it)
  curl -N $QWEN_URL/chat/completions -H 'Content-Type: application/json' \
    -d '{"model":"$MODEL","stream":true,"enable_thinking":false,"messages":[{"role":"user","content":"用一句话介绍你自己"}]}'

# 2. Limits: 3 requests per minute, in force within seconds (kubectl edit rlp $NAME-limits works too)
  kubectl patch rlp $NAME-limits --type merge -p '{"spec":{"limits":{"requestsPerMinute":3,"burst":3},"schedules":null}}'
  kubectl get rlp $NAME-limits                         # RPM 3
  for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%%{http_code} ' $CHAT; done; echo     # ... 429 429
  curl -si $CHAT | grep -iE '^(HTTP|retry-after|ratelimit|x-ratelimit)'
  kubectl apply -f %[1]s/manifests/20-ratelimitpolicy.yaml   # back to the seed's 50/200 per minute (100 between)

# 3. Degradation: heat the GPU and watch the ladder (the plan reads Prometheus every 2s)
  kubectl get dp -w &                                 # LEVEL and REASON; stop with: kill %%1
  $GPUTEMP 78     # L1 DisableStreaming: engine called without streaming, clients still get SSE
  $GPUTEMP 85     # L2 DisableThinking, after the level's 'for: 5s'
  $GPUTEMP 88     # L3 FallbackModel: answers come from $FALLBACK
  $GPUTEMP 92     # L4 StaticResponse: 服务繁忙，请稍后再试
  curl -si $CHAT_STREAM | grep -iE '^x-qwen|content'
  tail -n 2 $QWEN_DEMO_DIR/logs/requests.log         # as the engine got it: "stream":false from L1, "enable_thinking":false from L2
  $GPUTEMP 60     # back to L0 once the 10s cooldown has passed
  kubectl patch dp $NAME-degrade --type merge -p '{"spec":{"override":{"level":3,"reason":"drill"}}}'   # pin a level
  kubectl patch dp $NAME-degrade --type json -p '[{"op":"remove","path":"/spec/override"}]'
  (above 80 °C the policy's adaptive rule also halves the limits: kubectl get rlp)

# 4. Circuit breaker: the engine fails, after 5 failures traffic goes to $FALLBACK
  curl -s $QWEN_ENGINE/admin/config -H 'Content-Type: application/json' -d '{"failure-injection-rate":100,"failure-types":["server_error"]}' >/dev/null
  for i in 1 2 3 4 5 6 7; do curl -s -o /dev/null -w '%%{http_code} %%header{x-qwen-upstream}\n' $CHAT; done
  curl -s $QWEN_ENGINE/admin/config -H 'Content-Type: application/json' -d '{"failure-injection-rate":0}' >/dev/null   # primary again after 30s

# 5. Restart the operator: nothing is re-created, the gateway keeps serving
  %[10]s kill manager && %[10]s start manager
`, s.Dir, s.GatewayURL(), s.Model, s.FallbackModel, s.Kubeconfig(), s.Namespace, s.PrometheusURL(), s.AgentURL(), gpuTemp,
		filepath.Join(s.Bin, "qwen-demo")+" --dir "+s.Dir))
}
