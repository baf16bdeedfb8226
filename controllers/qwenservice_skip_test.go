package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// applyRecorder is a client that records the kind and name of every object it applies.
type applyRecorder struct {
	client.Client
	mu      sync.Mutex
	applied []string
}

func (c *applyRecorder) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if o, ok := obj.(interface {
		GetKind() string
		GetName() string
	}); ok {
		c.mu.Lock()
		c.applied = append(c.applied, o.GetKind()+" "+o.GetName())
		c.mu.Unlock()
	}
	return c.Client.Apply(ctx, obj, opts...)
}

// take returns what was applied since the last take.
func (c *applyRecorder) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.applied
	c.applied = nil
	return out
}

// TestUnchangedChildrenAreNotApplied checks that a reconcile applies only the children
// written by someone since its last apply (or whose render changed): a settled service costs
// no apply, a hand-edited ConfigMap costs one. A second reconciler, sharing the manager's
// cache, starts with no memory, so it applies everything once.
func TestUnchangedChildrenAreNotApplied(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, qwen3(ns))
	eventually(t, "children", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })

	rec := &applyRecorder{Client: reconciler.Client}
	r := &QwenServiceReconciler{Client: rec, APIReader: reconciler.APIReader, Recorder: reconciler.Recorder,
		Defaults: testDefaults, Clock: reconciler.Clock, ConflictRecheck: reconciler.ConflictRecheck,
		httpRoute: reconciler.httpRoute, btp: reconciler.btp}
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "qwen3"}}
	if _, err := r.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) == 0 {
		t.Fatal("a reconciler with no memory applied nothing")
	}
	eventually(t, "a settled reconcile applies nothing", func() error {
		if _, err := r.Reconcile(context.Background(), req); err != nil {
			return err
		}
		if got := rec.take(); len(got) > 0 {
			return fmt.Errorf("applied %v", got)
		}
		return nil
	})

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qwen3-gateway"}}
	update(t, cm, func(cm *corev1.ConfigMap) { cm.Data = map[string]string{"config.yaml": "hand-edited"} })
	eventually(t, "the edited ConfigMap, and only it, applied", func() error {
		if _, err := r.Reconcile(context.Background(), req); err != nil {
			return err
		}
		got := rec.take()
		if !slices.Equal(got, []string{"ConfigMap qwen3-gateway"}) {
			return fmt.Errorf("applied %v", got)
		}
		return nil
	})
}
