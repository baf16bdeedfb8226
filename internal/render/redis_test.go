package render

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// TestRedisTopologies: spec.gateway.redis renders into the gateway's config (loaded back
// through the gateway's loader), its environment and its volumes, for each topology.
func TestRedisTopologies(t *testing.T) {
	pw := &v1alpha1.SecretKeyRef{Name: "redis", Key: "password"}
	tests := []struct {
		name    string
		spec    v1alpha1.RedisSpec
		want    gatewayconfig.Redis
		env     []string // names of the gateway's environment variables
		caMount bool
		refs    []SecretRef
	}{
		{
			name: "standalone",
			spec: v1alpha1.RedisSpec{Address: "redis.ai:6379", PasswordSecretRef: pw, TLS: true},
			want: gatewayconfig.Redis{Address: "redis.ai:6379", PasswordEnv: RedisPasswordEnv, TLS: true},
			env:  []string{RedisPasswordEnv},
			refs: []SecretRef{{"redis", "spec.gateway.redis.passwordSecretRef"}},
		},
		{
			name: "sentinel with its own password, TLS with a private CA",
			spec: v1alpha1.RedisSpec{
				Sentinel: &v1alpha1.RedisSentinelSpec{MasterName: "mymaster", Addresses: []string{"s-0.s:26379", "s-1.s:26379"},
					PasswordSecretRef: &v1alpha1.SecretKeyRef{Name: "sentinel", Key: "pw"}},
				PasswordSecretRef: pw, TLS: true, CASecretRef: &v1alpha1.SecretKeyRef{Name: "redis-ca", Key: "ca.pem"},
			},
			want: gatewayconfig.Redis{PasswordEnv: RedisPasswordEnv, TLS: true, CAFile: RedisCAFile,
				Sentinel: &gatewayconfig.RedisSentinel{MasterName: "mymaster", Addresses: []string{"s-0.s:26379", "s-1.s:26379"}, PasswordEnv: RedisSentinelPasswordEnv}},
			env:     []string{RedisPasswordEnv, RedisSentinelPasswordEnv},
			caMount: true,
			refs: []SecretRef{{"redis", "spec.gateway.redis.passwordSecretRef"}, {"redis-ca", "spec.gateway.redis.caSecretRef"},
				{"sentinel", "spec.gateway.redis.sentinel.passwordSecretRef"}},
		},
		{
			name: "cluster without a password",
			spec: v1alpha1.RedisSpec{Cluster: &v1alpha1.RedisClusterSpec{Addresses: []string{"c-0.c:6379", "c-1.c:6379", "c-2.c:6379"}}},
			want: gatewayconfig.Redis{PasswordEnv: RedisPasswordEnv,
				Cluster: &gatewayconfig.RedisCluster{Addresses: []string{"c-0.c:6379", "c-1.c:6379", "c-2.c:6379"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "vllm-full")
			in.Service.Spec.Gateway.Redis = &tt.spec
			objs, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := gatewayconfig.Load([]byte(configOf(t, objs)))
			if err != nil {
				t.Fatal(err)
			}
			if got := *cfg.RateLimit.Redis; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("config redis = %+v\nwant %+v", got, tt.want)
			}
			pod := find(t, objs, "Deployment", "qwen3-gateway").(*appsv1.Deployment).Spec.Template.Spec
			var env []string
			for _, e := range pod.Containers[0].Env {
				env = append(env, e.Name)
			}
			if !reflect.DeepEqual(env, tt.env) {
				t.Errorf("env %v, want %v", env, tt.env)
			}
			var ca *corev1.Volume
			for i, v := range pod.Volumes {
				if v.Name == "redis-ca" {
					ca = &pod.Volumes[i]
				}
			}
			if (ca != nil) != tt.caMount {
				t.Fatalf("redis-ca volume: %v, want %v", ca != nil, tt.caMount)
			}
			if ca != nil {
				items := ca.Secret.Items
				if ca.Secret.SecretName != "redis-ca" || len(items) != 1 || items[0].Key != "ca.pem" || items[0].Path != "ca.crt" {
					t.Errorf("redis-ca volume %+v, want key ca.pem of Secret redis-ca as ca.crt", ca.Secret)
				}
				var mounted bool
				for _, m := range pod.Containers[0].VolumeMounts {
					mounted = mounted || m.Name == "redis-ca" && m.MountPath+"/ca.crt" == RedisCAFile
				}
				if !mounted {
					t.Errorf("redis-ca not mounted at %s: %+v", RedisCAFile, pod.Containers[0].VolumeMounts)
				}
			}
			want := append([]SecretRef{{"hf", "spec.engine.hfTokenSecretRef"}, {"qwen3-keys", "spec.gateway.apiKeysSecretRef"}}, tt.refs...)
			if got := SecretRefs(in.Service); !reflect.DeepEqual(got, want) {
				t.Errorf("SecretRefs = %v\nwant %v", got, want)
			}
		})
	}
}
