package controllers

import (
	"errors"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func deployment(name string, replicas, ready int32, available corev1.ConditionStatus) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}}
	d.Status.Replicas, d.Status.ReadyReplicas = replicas, ready
	if available != "" {
		d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: available, Reason: "R"}}
	}
	return d
}

func statusService() *v1alpha1.QwenService {
	return &v1alpha1.QwenService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ai", Name: "qwen3", Generation: 4},
		Spec:       v1alpha1.QwenServiceSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-1.7B"}},
	}
}

func TestComputeStatusReady(t *testing.T) {
	tests := []struct {
		name            string
		obs             observed
		problem         error
		status          metav1.ConditionStatus
		reason          string
		replicas, ready int32
	}{
		{"nothing yet", observed{}, nil, metav1.ConditionFalse, ReasonEngineUnavailable, 0, 0},
		{"engine up, gateway not reported", observed{engine: deployment("e", 2, 2, corev1.ConditionTrue), gateway: deployment("g", 2, 0, "")},
			nil, metav1.ConditionFalse, ReasonGatewayUnavailable, 2, 2},
		{"both available", observed{engine: deployment("e", 2, 1, corev1.ConditionTrue), gateway: deployment("g", 2, 2, corev1.ConditionTrue)},
			nil, metav1.ConditionTrue, ReasonAvailable, 2, 1},
		{"available with no ready pod", observed{engine: deployment("e", 1, 0, corev1.ConditionTrue), gateway: deployment("g", 2, 2, corev1.ConditionTrue)},
			nil, metav1.ConditionFalse, ReasonEngineUnavailable, 1, 0},
		{"invalid spec wins", observed{engine: deployment("e", 1, 1, corev1.ConditionTrue), gateway: deployment("g", 2, 2, corev1.ConditionTrue)},
			&render.InvalidError{Reason: render.ReasonSecretNotFound, Message: "m"}, metav1.ConditionFalse, render.ReasonSecretNotFound, 1, 1},
		{"apply failure", observed{}, errors.New("boom"), metav1.ConditionFalse, ReasonApplyFailed, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := computeStatus(statusService(), render.Inputs{}, tt.obs, tt.problem, t0)
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if c.Status != tt.status || c.Reason != tt.reason || c.ObservedGeneration != 4 {
				t.Errorf("Ready = %s/%s (gen %d): %s", c.Status, c.Reason, c.ObservedGeneration, c.Message)
			}
			if st.Replicas != tt.replicas || st.ReadyReplicas != tt.ready || st.ObservedGeneration != 4 {
				t.Errorf("replicas %d ready %d gen %d", st.Replicas, st.ReadyReplicas, st.ObservedGeneration)
			}
			if st.Endpoint != "http://qwen3-gateway.ai.svc:8080/v1" || st.ServedModel != "Qwen3-1.7B" {
				t.Errorf("endpoint %q servedModel %q", st.Endpoint, st.ServedModel)
			}
		})
	}
}

func TestComputeStatusKeepsTransitionTimes(t *testing.T) {
	qs := statusService()
	obs := observed{engine: deployment("e", 1, 1, corev1.ConditionTrue), gateway: deployment("g", 2, 2, corev1.ConditionTrue)}
	qs.Status = computeStatus(qs, render.Inputs{}, obs, nil, t0)
	again := computeStatus(qs, render.Inputs{}, obs, nil, t0.Add(time.Hour))
	if c := meta.FindStatusCondition(again.Conditions, v1alpha1.ConditionReady); !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("unchanged Ready moved its lastTransitionTime to %v", c.LastTransitionTime)
	}
	obs.engine = deployment("e", 1, 0, corev1.ConditionFalse)
	changed := computeStatus(qs, render.Inputs{}, obs, nil, t0.Add(time.Hour))
	if c := meta.FindStatusCondition(changed.Conditions, v1alpha1.ConditionReady); !c.LastTransitionTime.Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("Ready changed but lastTransitionTime is %v", c.LastTransitionTime)
	}
}

func TestDegradedAndFallbackConditions(t *testing.T) {
	qs := statusService()
	plan := &v1alpha1.DegradationPlan{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	for _, tt := range []struct {
		level  int32
		plan   bool
		status metav1.ConditionStatus
		reason string
	}{
		{0, false, metav1.ConditionFalse, ReasonNoPlan},
		{0, true, metav1.ConditionFalse, ReasonNormal},
		{1, true, metav1.ConditionTrue, "DisableStreaming"},
		{2, true, metav1.ConditionTrue, "DisableThinking"},
		{3, true, metav1.ConditionTrue, "FallbackModel"},
		{4, true, metav1.ConditionTrue, "StaticResponse"},
	} {
		in := render.Inputs{}
		if tt.plan {
			plan.Status.Level = tt.level
			in.Plan = plan
		}
		st := computeStatus(qs, in, observed{}, nil, t0)
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDegraded)
		if c.Status != tt.status || c.Reason != tt.reason || st.DegradationLevel != tt.level {
			t.Errorf("level %d: Degraded = %s/%s, degradationLevel %d", tt.level, c.Status, c.Reason, st.DegradationLevel)
		}
	}
	st := computeStatus(qs, render.Inputs{}, observed{}, nil, t0)
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionFallbackAvailable); c.Status != metav1.ConditionFalse || c.Reason != ReasonNotConfigured {
		t.Errorf("FallbackAvailable without a fallback = %s/%s", c.Status, c.Reason)
	}
	qs.Spec.Fallback = &v1alpha1.FallbackSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-0.6B"}}
	st = computeStatus(qs, render.Inputs{}, observed{fallback: deployment("f", 1, 1, corev1.ConditionTrue)}, nil, t0)
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionFallbackAvailable); c.Status != metav1.ConditionTrue {
		t.Errorf("FallbackAvailable with an available fallback = %s/%s", c.Status, c.Reason)
	}
	st = computeStatus(qs, render.Inputs{FallbackUnavailable: true}, observed{fallback: deployment("f", 1, 1, corev1.ConditionTrue)}, nil, t0)
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionFallbackAvailable); c.Status != metav1.ConditionFalse || c.Reason != ReasonNoReadyEndpoints {
		t.Errorf("FallbackAvailable without ready endpoints = %s/%s", c.Status, c.Reason)
	}
}

func TestStatusEvents(t *testing.T) {
	ready := func(s metav1.ConditionStatus, reason string, level int32) v1alpha1.QwenServiceStatus {
		return v1alpha1.QwenServiceStatus{DegradationLevel: level,
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: s, Reason: reason}}}
	}
	none := v1alpha1.QwenServiceStatus{}
	tests := []struct {
		name     string
		old, new v1alpha1.QwenServiceStatus
		want     []string
	}{
		{"new service waiting for pods", none, ready(metav1.ConditionFalse, ReasonEngineUnavailable, 0), nil},
		{"became ready", ready(metav1.ConditionFalse, ReasonGatewayUnavailable, 0), ready(metav1.ConditionTrue, ReasonAvailable, 0), []string{"Ready"}},
		{"stays ready", ready(metav1.ConditionTrue, ReasonAvailable, 0), ready(metav1.ConditionTrue, ReasonAvailable, 0), nil},
		{"lost the engine", ready(metav1.ConditionTrue, ReasonAvailable, 0), ready(metav1.ConditionFalse, ReasonEngineUnavailable, 0), []string{"NotReady"}},
		{"invalid spec", none, ready(metav1.ConditionFalse, render.ReasonSecretNotFound, 0), []string{render.ReasonSecretNotFound}},
		{"same invalid spec again", ready(metav1.ConditionFalse, render.ReasonSecretNotFound, 0), ready(metav1.ConditionFalse, render.ReasonSecretNotFound, 0), nil},
		{"level up", ready(metav1.ConditionTrue, ReasonAvailable, 0), ready(metav1.ConditionTrue, ReasonAvailable, 2), []string{"DegradationLevelChanged"}},
	}
	for _, tt := range tests {
		var got []string
		for _, ev := range statusEvents(tt.old, tt.new) {
			got = append(got, ev.reason)
		}
		if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
			t.Errorf("%s: events %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOldestPolicyWins(t *testing.T) {
	at := func(name string, sec int) v1alpha1.RateLimitPolicy {
		return v1alpha1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(sec) * time.Second))}}
	}
	if got := oldest([]v1alpha1.RateLimitPolicy{at("c", 2), at("b", 1), at("a", 1)}); got.Name != "a" {
		t.Errorf("oldest = %s, want a (earliest, then by name)", got.Name)
	}
	if got := oldest([]v1alpha1.RateLimitPolicy{}); got != nil {
		t.Errorf("oldest of none = %v", got)
	}
}

// TestPolicyWatchWaitsForTheVerdict: the QwenService reacts to a policy's status, not to its
// spec; a spec edit reaches it once the RateLimitPolicy controller has written its verdict.
func TestPolicyWatchWaitsForTheVerdict(t *testing.T) {
	judge := func(p *v1alpha1.RateLimitPolicy) *v1alpha1.RateLimitPolicy {
		p.Status, _ = policyStatus(policyInputs{policy: p, targetExists: true, now: t0})
		return p
	}
	p := limitsPolicy("ai", "qwen3-limits", 30)
	p.Generation = 1
	judge(p)
	edited := p.DeepCopy()
	edited.Generation = 2
	edited.Spec.Limits.RequestsPerMinute = ptr.To[int32](7)
	moved := edited.DeepCopy()
	moved.Spec.TargetRef.Name = "other"

	pred := policyStatusChanged()
	for _, tc := range []struct {
		name     string
		old, new *v1alpha1.RateLimitPolicy
		want     bool
	}{
		{"spec edited, not judged yet", p, edited, false},
		{"the verdict written", edited, judge(edited.DeepCopy()), true},
		{"metadata only", p, func() *v1alpha1.RateLimitPolicy { q := p.DeepCopy(); q.Labels = map[string]string{"a": "b"}; return q }(), false},
		{"target changed", edited, moved, true},
	} {
		if got := pred.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
			t.Errorf("%s: enqueue = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !pred.Create(event.CreateEvent{Object: p}) || !pred.Delete(event.DeleteEvent{Object: p}) {
		t.Error("creating or deleting a policy must re-render its target")
	}
}
