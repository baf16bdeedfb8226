package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/qwenops/qwen-operator/internal/testutil/dcgm"
)

// SetGPU sets the simulated GPU through the agent's HTTP setter (what hack/demo/gpu-temp
// does): form holds any of temperature, utilization and memory; the others keep their values.
// It returns the GPU's new state.
func SetGPU(ctx context.Context, s *State, form url.Values) (dcgm.GPU, error) {
	return dcgm.Set(ctx, nil, s.AgentURL(), form)
}

// RunAgent is the agent component (`qwen-demo agent`). It stands in for what a cluster
// would run around the demo's processes:
//   - the DCGM exporter of the simulated GPU (temperature set over HTTP);
//   - kube-proxy for the engine and fallback Services: proxies to the simulators that the
//     gateway reaches through --resolve, logging every API request as it reached the engine
//     (logs/requests.log: stream, chat_template_kwargs, model at each degradation level);
//   - the kubelet's part for the Deployments: there are no nodes or pods, so it writes each
//     Deployment's status from the health of the local process standing in for it (engine
//     and fallback simulators on /health, the gateway on /readyz), every second.
func RunAgent(dir string) error {
	s, err := Load(dir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	reqLog, err := os.OpenFile(s.Path("logs", RequestLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer reqLog.Close()
	rl := &requestLog{w: reqLog}
	exp := dcgm.New(s.Namespace, s.enginePod())
	for _, l := range []struct {
		port int
		h    http.Handler
		what string
	}{
		{s.Ports.Agent, exp, "GPU exporter (pod " + exp.GPU().Pod + ")"},
		{s.Ports.EngineService, newServiceProxy(s.Name+"-engine", URL(s.Ports.Engine), rl), "Service " + s.Name + "-engine"},
		{s.Ports.FallbackService, newServiceProxy(s.Name+"-fallback", URL(s.Ports.Fallback), rl), "Service " + s.Name + "-fallback"},
	} {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port)))
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("serving", "what", l.what, "addr", ln.Addr().String())
	}

	// The kubeconfig appears once the control plane is up; the agent may start first.
	var cs kubernetes.Interface
	for cs == nil {
		if cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig()); err == nil {
			cs, err = kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	stands := []standIn{
		{deployment: s.Name + "-engine", health: URL(s.Ports.Engine) + "/health"},
		{deployment: s.Name + "-fallback", health: URL(s.Ports.Fallback) + "/health"},
		{deployment: s.Name + "-gateway", health: URL(s.Ports.Gateway) + "/readyz"},
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for _, si := range stands {
			healthy := httpOK(si.health)
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ok := healthy(hctx) == nil
			cancel()
			if err := reflectDeployment(ctx, cs, s.Namespace, si.deployment, ok, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("updating Deployment status", "deployment", si.deployment, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// RequestLog is the agent's log of the API requests the engine and fallback received, one
// JSON object (RequestRecord) per line, in the logs directory.
const RequestLog = "requests.log"

// RequestRecord is one API request as an engine received it from the gateway.
type RequestRecord struct {
	Time      time.Time       `json:"time"`
	Service   string          `json:"service"` // qwen3-engine or qwen3-fallback
	Method    string          `json:"method"`
	Path      string          `json:"path"`
	RequestID string          `json:"requestId,omitempty"` // X-Request-Id
	Status    int             `json:"status"`
	Body      json.RawMessage `json:"body,omitempty"`
}

type requestLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *requestLog) write(r RequestRecord) {
	b, _ := json.Marshal(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(append(b, '\n'))
}

// maxLoggedBody bounds the request body kept in the request log.
const maxLoggedBody = 64 << 10

// newServiceProxy forwards to target, keeping the Host the gateway asked for, streaming
// responses as they come, and logging each /v1/ request with its body.
func newServiceProxy(service, target string, log *requestLog) http.Handler {
	u, _ := url.Parse(target)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		},
		FlushInterval: -1,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			rp.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := RequestRecord{Time: time.Now().UTC(), Service: service, Method: r.Method, Path: r.URL.Path, RequestID: r.Header.Get("X-Request-Id")}
		if len(body) <= maxLoggedBody && json.Valid(body) {
			rec.Body = body
		}
		sw := &statusWriter{ResponseWriter: w}
		// Logged even when the proxy aborts the response: ReverseProxy panics with
		// http.ErrAbortHandler when the gateway closes a stream right after [DONE].
		defer func() {
			rec.Status = sw.code()
			log.write(rec)
		}()
		rp.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the response status.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// standIn is a Deployment and the health URL of the local process standing in for its pods.
type standIn struct{ deployment, health string }

// reflectDeployment writes the status a Deployment controller and kubelet would report if
// its pods were as healthy as the local process: all replicas ready and Available=True, or
// none ready and Available=False. It writes only when that differs from the status stored.
func reflectDeployment(ctx context.Context, cs kubernetes.Interface, ns, name string, healthy bool, now time.Time) error {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	want := deploymentStatus(d, healthy, now)
	if deploymentStatusEqual(d.Status, want) {
		return nil
	}
	d.Status = want
	_, err = cs.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // next tick
	}
	return err
}

// deploymentStatus is the status of d when its pods are all healthy or all not.
func deploymentStatus(d *appsv1.Deployment, healthy bool, now time.Time) appsv1.DeploymentStatus {
	n := int32(1)
	if d.Spec.Replicas != nil {
		n = *d.Spec.Replicas
	}
	st := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n}
	avail := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse,
		Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability (local process not answering)."}
	if healthy || n == 0 {
		st.ReadyReplicas, st.AvailableReplicas = n, n
		avail.Status, avail.Reason, avail.Message = corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability."
	} else {
		st.UnavailableReplicas = n
	}
	progressing := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
		Reason: "NewReplicaSetAvailable", Message: fmt.Sprintf("ReplicaSet %q has successfully progressed (local stand-in).", d.Name)}
	for _, c := range []*appsv1.DeploymentCondition{&avail, &progressing} {
		c.LastUpdateTime, c.LastTransitionTime = metav1.NewTime(now), metav1.NewTime(now)
		for _, old := range d.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				c.LastTransitionTime, c.LastUpdateTime = old.LastTransitionTime, old.LastUpdateTime
			}
		}
		st.Conditions = append(st.Conditions, *c)
	}
	return st
}

func deploymentStatusEqual(a, b appsv1.DeploymentStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.Replicas != b.Replicas || a.UpdatedReplicas != b.UpdatedReplicas ||
		a.ReadyReplicas != b.ReadyReplicas || a.AvailableReplicas != b.AvailableReplicas || a.UnavailableReplicas != b.UnavailableReplicas ||
		len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}
