package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

func TestAccessLogFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--config", "c", "--access-log", "some"},
		{"--config", "c", "--access-log", "all", "--access-log-sample", "0"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	f, err := parseFlags([]string{"--config", "c"}, io.Discard)
	if err != nil || f.accessLogOptions(io.Discard).Logger != nil {
		t.Errorf("the access log is on by default: %v %+v", err, f)
	}
}

// TestAccessLogBinary runs the gateway as its main does, with --access-log=all and an API
// key, against a real simulator: each request leaves one JSON access line on the log output
// (even at --log-level=error), with the key's id and never the key.
func TestAccessLogBinary(t *testing.T) {
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", Mode: "echo"})
	keys := t.TempDir()
	const secret = "sk-binary-secret-9876"
	must(t, os.WriteFile(filepath.Join(keys, "ops"), []byte(secret), 0o600))
	c := newConfigDir(t, fmt.Sprintf("listen: 127.0.0.1:0\nadminListen: 127.0.0.1:0\nupstream: {url: %q, model: Qwen3-1.7B}\nauth: {keysDir: %q}\n", sim.URL, keys))
	p := start(t, context.Background(), "--config", c.path(), "--access-log", "all", "--log-level", "error", "--shutdown-delay", "0s")
	for _, key := range []string{secret, "sk-not-a-key"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/v1/chat/completions",
			strings.NewReader(`{"model":"Qwen3-1.7B","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var access []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for len(access) < 2 && time.Now().Before(deadline) {
		access = access[:0]
		for _, l := range strings.Split(p.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "access" {
				access = append(access, m)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(access) != 2 || access[0]["key_id"] != "ops" || access[0]["status"] != 200.0 || access[1]["status"] != 401.0 {
		t.Fatalf("access lines %v\n%s", access, p.logs)
	}
	if logs := p.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, "sk-not-a-key") {
		t.Fatalf("an API key is in the log:\n%s", logs)
	}
}

// TestRenderedAccessLogFlags: the flags the operator renders for spec.gateway.accessLog are
// ones this binary accepts, and select what the spec says.
func TestRenderedAccessLogFlags(t *testing.T) {
	for _, tc := range []struct {
		spec   *v1alpha1.GatewayAccessLog
		on     bool
		errors bool
		sample int
	}{
		{nil, false, false, 1},
		{&v1alpha1.GatewayAccessLog{Mode: v1alpha1.AccessLogOff, Sample: ptr.To(int32(5))}, false, false, 5},
		{&v1alpha1.GatewayAccessLog{}, true, false, 1},
		{&v1alpha1.GatewayAccessLog{Mode: v1alpha1.AccessLogErrors, Sample: ptr.To(int32(10))}, true, true, 10},
	} {
		qs := &v1alpha1.QwenService{ObjectMeta: metav1.ObjectMeta{Name: "qwen3", Namespace: "ai", UID: "u"},
			Spec: v1alpha1.QwenServiceSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-1.7B"}, Gateway: v1alpha1.GatewaySpec{AccessLog: tc.spec}}}
		objs, err := render.Render(render.Inputs{Service: qs, Defaults: render.Defaults{GatewayImage: "g", VLLMImage: "v"}})
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, o := range objs {
			if d, ok := o.(*appsv1.Deployment); ok && d.Name == "qwen3-gateway" {
				args = d.Spec.Template.Spec.Containers[0].Args
			}
		}
		f, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatalf("%+v: rendered %v: %v", tc.spec, args, err)
		}
		o := f.accessLogOptions(io.Discard)
		if (o.Logger != nil) != tc.on || tc.on && (o.ErrorsOnly != tc.errors || o.Sample != tc.sample) {
			t.Errorf("%+v: rendered %v gives %+v", tc.spec, args, o)
		}
	}
}
