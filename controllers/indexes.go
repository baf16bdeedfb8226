package controllers

import (
	"context"
	"fmt"

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

// SetupIndexes registers every field index the reconcilers of this package list by with the
// manager's cache. Call it once per manager, before the reconcilers' SetupWithManager.
func SetupIndexes(ctx context.Context, fi client.FieldIndexer) error {
	for _, ix := range []struct {
		obj     client.Object
		field   string
		extract client.IndexerFunc
	}{
		{&v1alpha1.RateLimitPolicy{}, IndexTargetRef, func(o client.Object) []string {
			return []string{o.(*v1alpha1.RateLimitPolicy).Spec.TargetRef.Name}
		}},
		{&v1alpha1.DegradationPlan{}, IndexTargetRef, func(o client.Object) []string {
			return []string{o.(*v1alpha1.DegradationPlan).Spec.TargetRef.Name}
		}},
		{&v1alpha1.QwenService{}, IndexSecretRefs, secretNames},
	} {
		if err := fi.IndexField(ctx, ix.obj, ix.field, ix.extract); err != nil {
			return fmt.Errorf("indexing %T by %s: %w", ix.obj, ix.field, err)
		}
	}
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
