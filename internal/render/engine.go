package render

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// Engine probe settings. /health answers once the model is loaded; the startup probe allows
// 30 minutes for the download and load before liveness takes over.
const (
	startupPeriodSeconds    = 10
	startupFailureThreshold = 180
	defaultGPUResource      = "nvidia.com/gpu"
)

// engineRole is what differs between the primary engine and the fallback engine.
type engineRole struct {
	name      string
	component string
	model     v1alpha1.ModelSpec
	replicas  int32
	resources v1alpha1.ResourcesSpec
}

func primaryRole(qs *v1alpha1.QwenService) engineRole {
	return engineRole{
		name: EngineName(qs), component: ComponentEngine, model: qs.Spec.Model,
		replicas: ptr.Deref(qs.Spec.Replicas, 1), resources: qs.Spec.Resources,
	}
}

func fallbackRole(qs *v1alpha1.QwenService) engineRole {
	fb := qs.Spec.Fallback
	return engineRole{
		name: FallbackName(qs), component: ComponentFallback, model: fb.Model,
		replicas: ptr.Deref(fb.Replicas, 1), resources: mergeResources(qs.Spec.Resources, fb.Resources),
	}
}

// mergeResources fills the unset fields of the fallback's resources from the primary's.
func mergeResources(primary, fb v1alpha1.ResourcesSpec) v1alpha1.ResourcesSpec {
	if fb.GPUs == nil {
		fb.GPUs = primary.GPUs
	}
	if fb.GPUResourceName == "" {
		fb.GPUResourceName = primary.GPUResourceName
	}
	if fb.Requests == nil {
		fb.Requests = primary.Requests
	}
	if fb.Limits == nil {
		fb.Limits = primary.Limits
	}
	if fb.NodeSelector == nil {
		fb.NodeSelector = primary.NodeSelector
	}
	if fb.Tolerations == nil {
		fb.Tolerations = primary.Tolerations
	}
	if fb.RuntimeClassName == "" {
		fb.RuntimeClassName = primary.RuntimeClassName
	}
	return fb
}

// GPUs is the GPU count of an engine pod: resources.gpus, else 1 (0 for the Simulator).
func GPUs(e v1alpha1.EngineSpec, r v1alpha1.ResourcesSpec) int32 {
	if r.GPUs != nil {
		return *r.GPUs
	}
	if engineType(e) == v1alpha1.EngineSimulator {
		return 0
	}
	return 1
}

// engineDeployment runs the engine for role. Engines with GPUs roll with maxSurge 0 and
// maxUnavailable 1: a surge pod would wait for a GPU that the old pod holds (the gateway's
// breaker sends traffic to the fallback or the static reply meanwhile). GPU-less engines
// surge one pod first.
func engineDeployment(qs *v1alpha1.QwenService, role engineRole, d Defaults) *appsv1.Deployment {
	e := qs.Spec.Engine
	port := enginePort(e)
	gpus := GPUs(e, role.resources)
	shared := role.component == ComponentEngine && FallbackShared(qs)
	primary := e
	switch {
	case shared && primary.GPUMemoryUtilization == "":
		primary.GPUMemoryUtilization = DefaultSharedPrimaryMemory
	case role.component == ComponentFallback && qs.Spec.Fallback.GPUMemoryUtilization != "":
		primary.GPUMemoryUtilization = qs.Spec.Fallback.GPUMemoryUtilization
	}
	container := engineContainer(primary, role.model, "engine", "http", port, gpus, d)
	container.Resources = corev1.ResourceRequirements{
		Requests: copyList(role.resources.Requests),
		Limits:   gpuLimits(role.resources, gpus),
	}
	containers := []corev1.Container{container}
	if shared {
		containers = append(containers, sharedFallbackContainer(qs, gpus, d))
	}
	pod := corev1.PodSpec{
		// An engine never talks to the API server: no token to steal.
		AutomountServiceAccountToken: ptr.To(false),
		SecurityContext:              enginePodSecurityContext(e),
		Containers:                   containers,
		NodeSelector:                 role.resources.NodeSelector,
		Tolerations:                  role.resources.Tolerations,
		Volumes: []corev1.Volume{
			{Name: "dshm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
			{Name: "model-cache", VolumeSource: modelCacheSource(qs)},
		},
	}
	if rc := role.resources.RuntimeClassName; rc != "" {
		pod.RuntimeClassName = ptr.To(rc)
	}
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(qs, role.name, role.component),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(role.replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selectorLabels(qs, role.component)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      ChildLabels(qs, role.component),
					Annotations: scrapeAnnotations(port),
				},
				Spec: pod,
			},
		},
	}
	if gpus > 0 {
		dep.Spec.Strategy = rollingUpdate(0, 1)
	} else {
		dep.Spec.Strategy = rollingUpdate(1, 0)
	}
	return dep
}

// engineContainer runs model with the engine of e on port (named portName), probed on /health.
func engineContainer(e v1alpha1.EngineSpec, model v1alpha1.ModelSpec, name, portName string, port, gpus int32, d Defaults) corev1.Container {
	command, args := engineCommand(e, model, port, gpus)
	return corev1.Container{
		Name:    name,
		Image:   engineImage(e, d),
		Command: command,
		Args:    args,
		Ports:   []corev1.ContainerPort{{Name: portName, ContainerPort: port, Protocol: corev1.ProtocolTCP}},
		Env:     mergeEnv(engineEnv(e), e.Env),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "dshm", MountPath: "/dev/shm"},
			{Name: "model-cache", MountPath: HFCacheDir},
		},
		StartupProbe:    portProbe("/health", portName, startupPeriodSeconds, startupFailureThreshold),
		ReadinessProbe:  portProbe("/health", portName, 5, 3),
		LivenessProbe:   portProbe("/health", portName, 10, 6),
		SecurityContext: engineSecurityContext(e),
	}
}

// Defaults of placement SharedPod: the GPU memory split between the two engines of a pod.
const (
	// DefaultSharedPrimaryMemory is the primary's share of GPU memory.
	DefaultSharedPrimaryMemory v1alpha1.Decimal = "0.6"
	// DefaultSharedFallbackMemory is the fallback's share of GPU memory.
	DefaultSharedFallbackMemory v1alpha1.Decimal = "0.3"
	// maxSharedMemory bounds the two shares together: each engine also needs CUDA context and
	// activation memory outside its share.
	maxSharedMemory = 0.95
)

// FallbackShared reports whether qs runs its fallback in the primary's pods (placement SharedPod).
func FallbackShared(qs *v1alpha1.QwenService) bool {
	return qs.Spec.Fallback != nil && qs.Spec.Fallback.Placement == v1alpha1.FallbackSharedPod
}

// FallbackPort is the port of the fallback Service: with SharedPod the fallback container's
// own port (spec.fallback.port, default the engine port + 1), else the engine port.
func FallbackPort(qs *v1alpha1.QwenService) int32 {
	port := enginePort(qs.Spec.Engine)
	if !FallbackShared(qs) {
		return port
	}
	if p := qs.Spec.Fallback.Port; p != 0 {
		return p
	}
	return port + 1
}

// sharedFallbackPort names the fallback container's port in a shared pod.
const sharedFallbackPort = "fallback-http"

// sharedFallbackContainer is the fallback engine as a second container of a primary pod. It
// asks for no GPU of its own: the device plugin gives the pod's GPU to the primary container,
// and NVIDIA_VISIBLE_DEVICES=all lets the NVIDIA container runtime expose it to this one too
// (on a node with one GPU, the pod's); its share of the GPU memory is its
// gpuMemoryUtilization.
func sharedFallbackContainer(qs *v1alpha1.QwenService, gpus int32, d Defaults) corev1.Container {
	fb := qs.Spec.Fallback
	e := qs.Spec.Engine
	e.GPUMemoryUtilization = fb.GPUMemoryUtilization
	if e.GPUMemoryUtilization == "" && gpus > 0 {
		e.GPUMemoryUtilization = DefaultSharedFallbackMemory
	}
	c := engineContainer(e, fb.Model, "fallback", sharedFallbackPort, FallbackPort(qs), gpus, d)
	if gpus > 0 {
		c.Env = mergeEnv(c.Env, []corev1.EnvVar{{Name: "NVIDIA_VISIBLE_DEVICES", Value: "all"}})
	}
	return c
}

// engineRunAsUser is the user of the Simulator image (FROM scratch, USER 65532).
const engineRunAsUser = 65532

// engineSecurityContext is as strict as each engine allows. Every engine runs without
// privilege escalation and with every capability dropped. The Simulator is a static binary
// in a scratch image that writes nothing: it also runs as a non-root user on a read-only root
// filesystem. vLLM and SGLang images run as root and write caches under /root/.cache and /tmp
// (Triton, torch.compile, FlashInfer), so they keep the root user and a writable root
// filesystem; docs/qwenservice.md says how to go further with a custom image.
func engineSecurityContext(e v1alpha1.EngineSpec) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if engineType(e) == v1alpha1.EngineSimulator {
		sc.RunAsNonRoot = ptr.To(true)
		sc.RunAsUser = ptr.To(int64(engineRunAsUser))
		sc.RunAsGroup = ptr.To(int64(engineRunAsUser))
		sc.ReadOnlyRootFilesystem = ptr.To(true)
	}
	return sc
}

// enginePodSecurityContext applies the runtime's default seccomp profile to every engine pod;
// the Simulator's volumes are made writable for its group.
func enginePodSecurityContext(e v1alpha1.EngineSpec) *corev1.PodSecurityContext {
	psc := &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	if engineType(e) == v1alpha1.EngineSimulator {
		psc.FSGroup = ptr.To(int64(engineRunAsUser))
	}
	return psc
}

// rollingUpdate replaces pods at most surge above and unavailable below the replica count.
func rollingUpdate(surge, unavailable int32) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxSurge:       ptr.To(intstr.FromInt32(surge)),
			MaxUnavailable: ptr.To(intstr.FromInt32(unavailable)),
		},
	}
}

// engineService is the ClusterIP Service of role's pods, on the engine port. The fallback
// Service of a shared pod selects the primary's pods, on the fallback container's port.
func engineService(qs *v1alpha1.QwenService, role engineRole) *corev1.Service {
	port, target, selector := enginePort(qs.Spec.Engine), "http", selectorLabels(qs, role.component)
	if role.component == ComponentFallback && FallbackShared(qs) {
		port, target, selector = FallbackPort(qs), sharedFallbackPort, selectorLabels(qs, ComponentEngine)
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(qs, role.name, role.component),
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports: []corev1.ServicePort{{
				Name: "http", Port: port, TargetPort: intstr.FromString(target), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// engineEnv is HF_TOKEN from the spec's Secret, when set.
func engineEnv(e v1alpha1.EngineSpec) []corev1.EnvVar {
	r := e.HFTokenSecretRef
	if r == nil {
		return nil
	}
	return []corev1.EnvVar{{Name: "HF_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: r.Name}, Key: secretKey(r.Key),
	}}}}
}

func secretKey(k string) string {
	if k == "" {
		return "token"
	}
	return k
}

// mergeEnv appends extra to base; a later variable replaces an earlier one of the same name
// (server-side apply refuses duplicate names).
func mergeEnv(base, extra []corev1.EnvVar) []corev1.EnvVar {
	var out []corev1.EnvVar
	at := map[string]int{}
	for _, v := range append(append([]corev1.EnvVar{}, base...), extra...) {
		if i, ok := at[v.Name]; ok {
			out[i] = v
			continue
		}
		at[v.Name] = len(out)
		out = append(out, v)
	}
	return out
}

// gpuLimits are the spec's limits plus the GPUs under the GPU resource name.
func gpuLimits(r v1alpha1.ResourcesSpec, gpus int32) corev1.ResourceList {
	l := copyList(r.Limits)
	if gpus == 0 {
		return l
	}
	if l == nil {
		l = corev1.ResourceList{}
	}
	name := r.GPUResourceName
	if name == "" {
		name = defaultGPUResource
	}
	l[corev1.ResourceName(name)] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
	return l
}

func copyList(l corev1.ResourceList) corev1.ResourceList {
	if l == nil {
		return nil
	}
	out := corev1.ResourceList{}
	for k, v := range l {
		out[k] = v.DeepCopy()
	}
	return out
}

// modelCacheSource is the operator's PVC (size), the user's PVC (claimName) or an emptyDir.
func modelCacheSource(qs *v1alpha1.QwenService) corev1.VolumeSource {
	mc := qs.Spec.ModelCache
	switch {
	case mc != nil && mc.Size != nil:
		return corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: CacheName(qs)}}
	case mc != nil && mc.ClaimName != "":
		return corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: mc.ClaimName}}
	default:
		return corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	}
}

func httpProbe(path string, period, failures int32) *corev1.Probe {
	return portProbe(path, "http", period, failures)
}

// portProbe is an HTTP GET of path on the named container port.
func portProbe(path, port string, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(port)}},
		PeriodSeconds:    period,
		TimeoutSeconds:   5,
		FailureThreshold: failures,
	}
}

// scrapeAnnotations let an annotation-driven Prometheus scrape the pod's /metrics.
func scrapeAnnotations(port int32) map[string]string {
	return map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   strconv.Itoa(int(port)),
		"prometheus.io/path":   "/metrics",
	}
}

// objectMeta names a child of qs and labels it with its component.
func objectMeta(qs *v1alpha1.QwenService, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       qs.Namespace,
		Labels:          ChildLabels(qs, component),
		OwnerReferences: []metav1.OwnerReference{ownerRef(qs)},
	}
}

// ownerRef is the controller reference to qs: garbage collection removes the children with it.
func ownerRef(qs *v1alpha1.QwenService) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "QwenService",
		Name:               qs.Name,
		UID:                qs.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}
