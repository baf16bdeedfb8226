package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// patchStatus applies setStatus to obj and patches its status with an optimistic lock: when
// obj came from a stale cache the patch fails with a conflict and the reconcile is retried
// from fresh state, so a transition (and its Event) is never computed from an old status.
func patchStatus[T client.Object](ctx context.Context, c client.Client, obj T, setStatus func(T)) error {
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	setStatus(obj)
	if err := c.Status().Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}

// retryIfStale turns a status write's conflict (the object changed since the cache read it)
// into a quiet requeue; other errors go back to the controller as errors.
func retryIfStale(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{Requeue: true}, nil
	}
	return ctrl.Result{}, err
}
