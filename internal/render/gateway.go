package render

import (
	"path"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// gatewayRunAsUser is the unprivileged user of the gateway container.
const gatewayRunAsUser = 65532

// The gateway's shutdown on SIGTERM (cmd/gateway): /readyz answers 503 while it keeps serving
// for the delay (the endpoints drop the terminating pod meanwhile), then in-flight requests
// and streams get the timeout to finish. The pod's grace period covers both and a margin, so
// the kubelet never kills a draining gateway.
const (
	gatewayShutdownDelay   = 5 * time.Second
	gatewayShutdownTimeout = 60 * time.Second
	gatewayGracePeriod     = int64((gatewayShutdownDelay + gatewayShutdownTimeout + 5*time.Second) / time.Second)
)

func gatewayReplicas(gw v1alpha1.GatewaySpec) int32 { return ptr.Deref(gw.Replicas, 2) }

// gatewayConfigMap holds the rendered gateway configuration under gatewayconfig.ConfigMapKey.
func gatewayConfigMap(qs *v1alpha1.QwenService, config []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(qs, GatewayName(qs), ComponentGateway),
		Data:       map[string]string{gatewayconfig.ConfigMapKey: string(config)},
	}
}

// gatewayDeployment runs the gateway with `--configmap NAMESPACE/NAME`: it watches its own
// ConfigMap through the API (gatewayRole allows exactly that) and applies a new config within
// a second of the operator writing it, keeping its limiter counters, breaker state and open
// streams. So the pod template carries no config hash: rolling the pods on every level or
// schedule change would reset all three, and a mounted file would reach the pods only after
// the kubelet's sync period (about a minute), too slow for a level change. A config the
// gateway refuses leaves the last good one serving.
func gatewayDeployment(qs *v1alpha1.QwenService, d Defaults) *appsv1.Deployment {
	gw := qs.Spec.Gateway
	image := gw.Image
	if image == "" {
		image = d.GatewayImage
	}
	container := corev1.Container{
		Name:  "gateway",
		Image: image,
		Args: []string{"--configmap", qs.Namespace + "/" + GatewayName(qs),
			"--shutdown-delay", gatewayShutdownDelay.String(), "--shutdown-timeout", gatewayShutdownTimeout.String()},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: GatewayPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: GatewayAdminPort, Protocol: corev1.ProtocolTCP},
		},
		Env:            gatewayEnv(gw),
		Resources:      gatewayResources(gw),
		ReadinessProbe: httpProbe("/readyz", 5, 3),
		LivenessProbe:  httpProbe("/healthz", 10, 3),
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To(int64(gatewayRunAsUser)),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	container.Args = append(container.Args, accessLogArgs(gw.AccessLog)...)
	var volumes []corev1.Volume
	if ref := gw.APIKeysSecretRef; ref != nil {
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "api-keys", MountPath: GatewayKeysDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "api-keys", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: ref.Name},
		}})
	}
	if rd := gw.Redis; rd != nil && rd.CASecretRef != nil {
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: "redis-ca", MountPath: path.Dir(RedisCAFile), ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "redis-ca", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: rd.CASecretRef.Name,
				Items: []corev1.KeyToPath{{Key: secretKey(rd.CASecretRef.Key), Path: path.Base(RedisCAFile)}}},
		}})
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(qs, GatewayName(qs), ComponentGateway),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(gatewayReplicas(gw)),
			Selector: &metav1.LabelSelector{MatchLabels: selectorLabels(qs, ComponentGateway)},
			Strategy: rollingUpdate(1, 0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      ChildLabels(qs, ComponentGateway),
					Annotations: scrapeAnnotations(GatewayAdminPort),
				},
				Spec: corev1.PodSpec{
					ServiceAccountName:            GatewayName(qs),
					TerminationGracePeriodSeconds: ptr.To(gatewayGracePeriod),
					Containers:                    []corev1.Container{container},
					Volumes:                       volumes,
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew:           1,
						TopologyKey:       corev1.LabelHostname,
						WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: selectorLabels(qs, ComponentGateway)},
					}},
				},
			},
		},
	}
}

// gatewayEnv passes the Redis password (and the sentinels') from its Secret, when one is set.
func gatewayEnv(gw v1alpha1.GatewaySpec) []corev1.EnvVar {
	if gw.Redis == nil {
		return nil
	}
	var env []corev1.EnvVar
	fromSecret := func(name string, r *v1alpha1.SecretKeyRef) {
		env = append(env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: r.Name}, Key: secretKey(r.Key),
		}}})
	}
	if r := gw.Redis.PasswordSecretRef; r != nil {
		fromSecret(RedisPasswordEnv, r)
	}
	if s := gw.Redis.Sentinel; s != nil && s.PasswordSecretRef != nil {
		fromSecret(RedisSentinelPasswordEnv, s.PasswordSecretRef)
	}
	return env
}

// gatewayResources are the spec's, else a small request that fits a Go proxy.
func gatewayResources(gw v1alpha1.GatewaySpec) corev1.ResourceRequirements {
	if gw.Resources != nil {
		return *gw.Resources.DeepCopy()
	}
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("128Mi"),
	}}
}

// gatewayService exposes the gateway pods on GatewayPort.
func gatewayService(qs *v1alpha1.QwenService) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(qs, GatewayName(qs), ComponentGateway),
		Spec: corev1.ServiceSpec{
			Selector: selectorLabels(qs, ComponentGateway),
			Ports: []corev1.ServicePort{{
				Name: "http", Port: GatewayPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// gatewayServiceAccount is the identity of the gateway pods.
func gatewayServiceAccount(qs *v1alpha1.QwenService) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: objectMeta(qs, GatewayName(qs), ComponentGateway),
	}
}

// gatewayRole lets the gateway read (and watch) its own ConfigMap and nothing else.
func gatewayRole(qs *v1alpha1.QwenService) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: objectMeta(qs, GatewayName(qs), ComponentGateway),
		Rules: []rbacv1.PolicyRule{{
			APIGroups:     []string{""},
			Resources:     []string{"configmaps"},
			ResourceNames: []string{GatewayName(qs)},
			Verbs:         []string{"get", "list", "watch"},
		}},
	}
}

// gatewayRoleBinding grants gatewayRole to gatewayServiceAccount.
func gatewayRoleBinding(qs *v1alpha1.QwenService) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: objectMeta(qs, GatewayName(qs), ComponentGateway),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: GatewayName(qs)},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: GatewayName(qs), Namespace: qs.Namespace}},
	}
}

// gatewayPDB keeps all but one gateway pod up through voluntary disruptions.
func gatewayPDB(qs *v1alpha1.QwenService) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(qs, GatewayName(qs), ComponentGateway),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels(qs, ComponentGateway)},
		},
	}
}
