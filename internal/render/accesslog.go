package render

import (
	"strconv"
	"strings"

	"k8s.io/utils/ptr"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

// accessLogArgs are the gateway flags of spec.gateway.accessLog: none when it is absent or
// Off (the gateway's default is off), else --access-log=all|errors and the sample.
func accessLogArgs(al *v1alpha1.GatewayAccessLog) []string {
	if al == nil || al.Mode == v1alpha1.AccessLogOff {
		return nil
	}
	mode := v1alpha1.AccessLogAll
	if al.Mode != "" {
		mode = al.Mode
	}
	return []string{"--access-log", strings.ToLower(string(mode)),
		"--access-log-sample", strconv.Itoa(int(max(ptr.Deref(al.Sample, 1), 1)))}
}
