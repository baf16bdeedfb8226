package controllers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// observed is the state of the child Deployments, nil when absent from the cache.
type observed struct {
	engine, fallback, gateway *appsv1.Deployment
}

// computeStatus is the status of qs given its inputs, its children and the error of this
// reconcile (an *render.InvalidError, an apply error, or nil). Conditions keep their
// lastTransitionTime while their status holds; now stamps the ones that change.
func computeStatus(qs *v1alpha1.QwenService, in render.Inputs, obs observed, problem error, now time.Time) v1alpha1.QwenServiceStatus {
	st := qs.Status.DeepCopy()
	st.ObservedGeneration = qs.Generation
	st.ServedModel = render.ServedName(qs.Spec.Model)
	st.Endpoint = render.Endpoint(qs)
	st.URL = render.URL(qs)
	st.DegradationLevel = render.Level(in.Plan)
	st.RateLimit = render.RateLimitSummary(in.Policy)
	st.Replicas, st.ReadyReplicas = 0, 0
	if obs.engine != nil {
		st.Replicas, st.ReadyReplicas = obs.engine.Status.Replicas, obs.engine.Status.ReadyReplicas
	}
	set := func(c metav1.Condition) { setCondition(&st.Conditions, qs.Generation, now, c) }
	engine := deploymentCondition(v1alpha1.ConditionEngineAvailable, "engine", obs.engine)
	gateway := deploymentCondition(v1alpha1.ConditionGatewayAvailable, "gateway", obs.gateway)
	set(engine)
	set(gateway)
	set(fallbackCondition(qs, obs.fallback, obs.engine, in.FallbackUnavailable))
	set(degradedCondition(qs, in.Plan))
	set(clientsCondition(qs, in.Policy))
	set(readyCondition(qs, engine, gateway, problem))
	return *st
}

// deploymentCondition mirrors the Available condition of a child Deployment, and is False
// while no replica is ready: a one-replica engine rolls with maxUnavailable 1, so its
// Deployment reports Available with no pod serving.
func deploymentCondition(typ, what string, d *appsv1.Deployment) metav1.Condition {
	c := metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: ReasonPending}
	if d == nil {
		c.Message = fmt.Sprintf("the %s Deployment does not exist yet", what)
		return c
	}
	ready := fmt.Sprintf("%s Deployment %s: %d/%d replicas ready", what, d.Name, d.Status.ReadyReplicas, ptr.Deref(d.Spec.Replicas, 1))
	for _, dc := range d.Status.Conditions {
		if dc.Type != appsv1.DeploymentAvailable {
			continue
		}
		c.Status = metav1.ConditionStatus(dc.Status)
		c.Reason = dc.Reason
		if c.Reason == "" {
			c.Reason = ReasonAvailable
		}
		c.Message = ready
		if dc.Message != "" {
			c.Message += "; " + dc.Message
		}
		if c.Status == metav1.ConditionTrue && d.Status.ReadyReplicas == 0 && ptr.Deref(d.Spec.Replicas, 1) > 0 {
			c.Status, c.Reason = metav1.ConditionFalse, ReasonNoReadyReplicas
		}
		return c
	}
	c.Message = ready + "; availability not reported yet"
	return c
}

// fallbackCondition mirrors the fallback Deployment (the engine's, whose pods run the
// fallback container, with placement SharedPod), False/NotConfigured without a fallback,
// and False/NoReadyEndpoints while the fallback Service has no ready endpoint (noEndpoints):
// the gateway config then marks the fallback unavailable.
func fallbackCondition(qs *v1alpha1.QwenService, d, engine *appsv1.Deployment, noEndpoints bool) metav1.Condition {
	if qs.Spec.Fallback == nil {
		return metav1.Condition{Type: v1alpha1.ConditionFallbackAvailable, Status: metav1.ConditionFalse,
			Reason: ReasonNotConfigured, Message: "spec.fallback is not set; level 3 acts as level 2"}
	}
	c := deploymentCondition(v1alpha1.ConditionFallbackAvailable, "fallback", d)
	if render.FallbackShared(qs) {
		c = deploymentCondition(v1alpha1.ConditionFallbackAvailable, "engine (with the fallback container)", engine)
	}
	if noEndpoints && c.Status == metav1.ConditionTrue {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonNoReadyEndpoints
	}
	if noEndpoints {
		c.Message = fmt.Sprintf("Service %s has no ready endpoint: the gateway sends it nothing (level 3 acts as level 2; while the primary's breaker is open requests get the cached or static reply); %s",
			render.FallbackName(qs), c.Message)
	}
	return c
}

// degradedCondition is True while the plan's level is above 0, with the level as reason.
func degradedCondition(qs *v1alpha1.QwenService, plan *v1alpha1.DegradationPlan) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionFalse}
	if plan == nil {
		c.Reason, c.Message = ReasonNoPlan, "no DegradationPlan targets this service"
		return c
	}
	level := render.Level(plan)
	reason, ok := levelReasons[level]
	if !ok {
		c.Reason, c.Message = ReasonNormal, fmt.Sprintf("DegradationPlan %q is at level %d", plan.Name, level)
		return c
	}
	c.Status, c.Reason = metav1.ConditionTrue, reason
	c.Message = fmt.Sprintf("DegradationPlan %q is at level %d (%s)", plan.Name, level, reason)
	if len(plan.Status.Reasons) > 0 {
		c.Message += ": " + strings.Join(plan.Status.Reasons, "; ")
	}
	if level == v1alpha1.LevelFallbackModel && qs.Spec.Fallback == nil {
		c.Message += "; no fallback is configured, so level 3 acts as level 2"
	}
	return c
}

// clientsCondition says how the gateway tells the clients of the enforced policy apart. It is
// False when the policy keys by ClientIP, the service is exposed through a proxy, and the
// gateway trusts no X-Forwarded-For: every client then has the proxy's address and they all
// share one limit.
func clientsCondition(qs *v1alpha1.QwenService, policy *v1alpha1.RateLimitPolicy) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionClientsIdentified, Status: metav1.ConditionTrue}
	e := render.Enforced(policy)
	gw := qs.Spec.Gateway
	switch {
	case e == nil:
		c.Reason, c.Message = ReasonNoRateLimit, "no RateLimitPolicy is enforced"
	case e.Key.Source == v1alpha1.KeyAPIKey:
		c.Reason, c.Message = ReasonKeyedByAPIKey, fmt.Sprintf("RateLimitPolicy %q limits per API key", policy.Name)
	case e.Key.Source == v1alpha1.KeyHeader:
		c.Reason = ReasonKeyedByHeader
		c.Message = fmt.Sprintf("RateLimitPolicy %q limits per value of the %s header: meaningful only when a proxy in front of the gateway sets it, since a client that reaches the gateway can send any value", policy.Name, e.Key.Header)
	case qs.Spec.Exposure == nil:
		c.Reason, c.Message = ReasonPeerAddress, "clients reach the gateway Service directly and are limited by their own addresses"
	case render.TrustedHops(qs) > 0 || len(gw.TrustedProxies) > 0:
		c.Reason = ReasonForwardedFor
		c.Message = fmt.Sprintf("the client address is read from X-Forwarded-For (trustedHops %d, %d trusted proxies)", render.TrustedHops(qs), len(gw.TrustedProxies))
	default:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonProxyAddressOnly
		c.Message = fmt.Sprintf("RateLimitPolicy %q limits per client IP, but spec.exposure sends every client through a proxy and spec.gateway sets trustedHops 0 and no trustedProxies: the gateway sees only the proxy's address, so all clients share one limit; set trustedHops (1 behind ingress-nginx or Envoy Gateway) or trustedProxies", policy.Name)
	}
	return c
}

// readyCondition is True when the spec rendered and applied and both the engine and the
// gateway are available. An invalid spec's reason names the problem.
func readyCondition(qs *v1alpha1.QwenService, engine, gateway metav1.Condition, problem error) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse}
	var invalid *render.InvalidError
	var conflict *conflictError
	switch {
	case errors.As(problem, &invalid):
		c.Reason, c.Message = invalid.Reason, invalid.Message
	case errors.As(problem, &conflict):
		c.Reason, c.Message = ReasonConflict, conflict.Error()
	case problem != nil:
		c.Reason, c.Message = ReasonApplyFailed, truncate(problem.Error(), 1024)
	case engine.Status != metav1.ConditionTrue:
		c.Reason, c.Message = ReasonEngineUnavailable, engine.Message
	case gateway.Status != metav1.ConditionTrue:
		c.Reason, c.Message = ReasonGatewayUnavailable, gateway.Message
	default:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonAvailable
		c.Message = fmt.Sprintf("serving %s at %s", render.ServedName(qs.Spec.Model), render.Endpoint(qs))
	}
	return c
}

// specProblem reports whether a Ready reason says the spec could not be rendered or applied,
// rather than that pods are not available yet.
func specProblem(reason string) bool {
	switch reason {
	case ReasonAvailable, ReasonEngineUnavailable, ReasonGatewayUnavailable, ReasonPending:
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// statusEvent is an Event to record for a status change.
type statusEvent struct {
	eventType, reason, note string
}

// statusEvents are the meaningful transitions from old to new: became ready, stopped being
// ready, a new reason the spec cannot be rendered or applied, and a change of degradation
// level. A new service waiting for its pods records nothing.
func statusEvents(old, new v1alpha1.QwenServiceStatus) []statusEvent {
	var evs []statusEvent
	was, is := meta.FindStatusCondition(old.Conditions, v1alpha1.ConditionReady), meta.FindStatusCondition(new.Conditions, v1alpha1.ConditionReady)
	wasReady := was != nil && was.Status == metav1.ConditionTrue
	switch {
	case is == nil:
	case is.Status == metav1.ConditionTrue && !wasReady:
		evs = append(evs, statusEvent{corev1.EventTypeNormal, "Ready", is.Message})
	case is.Status == metav1.ConditionTrue:
	case specProblem(is.Reason) && (was == nil || was.Reason != is.Reason):
		evs = append(evs, statusEvent{corev1.EventTypeWarning, is.Reason, is.Message})
	case wasReady:
		evs = append(evs, statusEvent{corev1.EventTypeWarning, "NotReady", is.Reason + ": " + is.Message})
	}
	if old.DegradationLevel != new.DegradationLevel {
		typ := corev1.EventTypeWarning
		if new.DegradationLevel < old.DegradationLevel {
			typ = corev1.EventTypeNormal
		}
		evs = append(evs, statusEvent{typ, "DegradationLevelChanged",
			fmt.Sprintf("degradation level %d -> %d", old.DegradationLevel, new.DegradationLevel)})
	}
	return evs
}
