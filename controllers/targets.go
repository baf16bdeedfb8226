package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// targeting maps an object to the policies or plans (newList's kind) that target the same
// QwenService: the service itself, or any policy or plan naming it.
func targeting(c client.Client, newList func() client.ObjectList) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		target := o.GetName()
		switch p := o.(type) {
		case *v1alpha1.RateLimitPolicy:
			target = p.Spec.TargetRef.Name
		case *v1alpha1.DegradationPlan:
			target = p.Spec.TargetRef.Name
		}
		list := newList()
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexTargetRef: target}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing objects by target", "target", target)
			return nil
		}
		var reqs []reconcile.Request
		_ = meta.EachListItem(list, func(item runtime.Object) error {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(item.(client.Object))})
			return nil
		})
		return reqs
	})
}

// createOrDelete passes only creations and deletions: what changes existence or precedence.
func createOrDelete() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// standing says whether obj's target QwenService exists and names an older object of obj's
// kind (listed into list) on the same target, "" when obj is the oldest: of two policies or
// plans on one target, the older wins.
func standing(ctx context.Context, c client.Reader, obj client.Object, target string, list client.ObjectList) (exists bool, older string, err error) {
	err = c.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: target}, &v1alpha1.QwenService{})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, "", err
	}
	exists = err == nil
	if err := c.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{IndexTargetRef: target}); err != nil {
		return exists, "", fmt.Errorf("listing by target: %w", err)
	}
	first := obj
	_ = meta.EachListItem(list, func(item runtime.Object) error {
		if o := item.(client.Object); byAge(o, first) < 0 {
			first = o
		}
		return nil
	})
	if first.GetName() != obj.GetName() {
		older = first.GetName()
	}
	return exists, older, nil
}
