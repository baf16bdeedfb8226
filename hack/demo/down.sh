#!/usr/bin/env bash
# down.sh (make demo-down) stops exactly the processes make demo started: the pids it
# recorded in ${QWEN_DEMO_DIR:-/tmp/qwen-demo}/pids, each checked to still be the same
# process. The logs stay in that directory until the next make demo.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -x bin/qwen-demo ]; then
  exec bin/qwen-demo down "$@"
fi
exec go run ./hack/demo/qwen-demo down "$@"
