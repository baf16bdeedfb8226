package controllers

import (
	"cmp"
	"context"
	"fmt"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// inputs gathers what rendering qs depends on: the policy and plan in force, the referenced
// Secrets that are missing, and which optional kinds (HTTPRoute, BackendTrafficPolicy) the
// API server serves.
func (r *QwenServiceReconciler) inputs(ctx context.Context, qs *v1alpha1.QwenService) (render.Inputs, error) {
	in := render.Inputs{Service: qs, Defaults: r.Defaults, HTTPRouteServed: r.httpRoute.Served(), BackendTrafficPolicyServed: r.btp.Served()}
	var policies v1alpha1.RateLimitPolicyList
	if err := r.List(ctx, &policies, client.InNamespace(qs.Namespace), client.MatchingFields{IndexTargetRef: qs.Name}); err != nil {
		return in, fmt.Errorf("listing RateLimitPolicies: %w", err)
	}
	in.Policy = oldest(policies.Items)
	var plans v1alpha1.DegradationPlanList
	if err := r.List(ctx, &plans, client.InNamespace(qs.Namespace), client.MatchingFields{IndexTargetRef: qs.Name}); err != nil {
		return in, fmt.Errorf("listing DegradationPlans: %w", err)
	}
	in.Plan = oldest(plans.Items)
	for _, ref := range render.SecretRefs(qs) {
		s := &metav1.PartialObjectMetadata{}
		s.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		err := r.Get(ctx, types.NamespacedName{Namespace: qs.Namespace, Name: ref.Name}, s)
		switch {
		case apierrors.IsNotFound(err):
			in.MissingSecrets = append(in.MissingSecrets, ref)
		case err != nil:
			return in, fmt.Errorf("looking up Secret %s: %w", ref.Name, err)
		}
	}
	if qs.Spec.Fallback != nil {
		ready, err := r.readyEndpoints(ctx, qs.Namespace, render.FallbackName(qs))
		if err != nil {
			return in, err
		}
		in.FallbackUnavailable = ready == 0
	}
	return in, nil
}

// readyEndpoints counts the ready endpoints of a Service in its EndpointSlices (an endpoint
// whose readiness is unknown counts as ready, as the EndpointSlice API says).
func (r *QwenServiceReconciler) readyEndpoints(ctx context.Context, namespace, service string) (int, error) {
	var slices discoveryv1.EndpointSliceList
	if err := r.List(ctx, &slices, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		return 0, fmt.Errorf("listing the EndpointSlices of Service %s: %w", service, err)
	}
	n := 0
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if ptr.Deref(e.Conditions.Ready, true) {
				n++
			}
		}
	}
	return n, nil
}

// oldest returns the object created first (ties broken by name), or nil: of two policies on
// one target, the older wins.
func oldest[T any, PT interface {
	*T
	client.Object
}](items []T) PT {
	if len(items) == 0 {
		return nil
	}
	ptrs := make([]PT, len(items))
	for i := range items {
		ptrs[i] = PT(&items[i])
	}
	return slices.MinFunc(ptrs, func(a, b PT) int { return byAge(a, b) })
}

// byAge orders objects by creation time, ties (creation times have one-second resolution)
// broken by name.
func byAge(a, b client.Object) int {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	switch {
	case ta.Before(&tb):
		return -1
	case tb.Before(&ta):
		return 1
	}
	return cmp.Compare(a.GetName(), b.GetName())
}
