package controllers

import (
	"context"
	"fmt"

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
