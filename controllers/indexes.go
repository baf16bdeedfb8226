package controllers

import (
	"context"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// Field indexes of the manager's cache, shared by the reconcilers of this package.
const (
	// IndexTargetRef indexes RateLimitPolicies and DegradationPlans by spec.targetRef.name.
	IndexTargetRef = "spec.targetRef.name"
	// IndexSecretRefs indexes QwenServices by the names of the Secrets their pods need.
	IndexSecretRefs = "spec.secretRefs"
)

var (
	indexMu   sync.Mutex
	indexedBy = map[client.FieldIndexer]bool{}
)

// setupIndexes registers every field index of the package with fi, once per indexer, so each
// reconciler can call it from SetupWithManager.
func setupIndexes(ctx context.Context, fi client.FieldIndexer) error {
	indexMu.Lock()
	defer indexMu.Unlock()
	if indexedBy[fi] {
		return nil
	}
	if err := fi.IndexField(ctx, &v1alpha1.RateLimitPolicy{}, IndexTargetRef, func(o client.Object) []string {
		return []string{o.(*v1alpha1.RateLimitPolicy).Spec.TargetRef.Name}
	}); err != nil {
		return err
	}
	if err := fi.IndexField(ctx, &v1alpha1.DegradationPlan{}, IndexTargetRef, func(o client.Object) []string {
		return []string{o.(*v1alpha1.DegradationPlan).Spec.TargetRef.Name}
	}); err != nil {
		return err
	}
	if err := fi.IndexField(ctx, &v1alpha1.QwenService{}, IndexSecretRefs, secretNames); err != nil {
		return err
	}
	indexedBy[fi] = true
	return nil
}

// secretNames are the distinct Secret names a QwenService's pods need.
func secretNames(o client.Object) []string {
	var names []string
	for _, r := range render.SecretRefs(o.(*v1alpha1.QwenService)) {
		if len(names) == 0 || names[len(names)-1] != r.Name {
			names = append(names, r.Name)
		}
	}
	return names
}
