package controllers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// waitFor is how long eventually polls before failing.
const waitFor = 30 * time.Second

// eventually polls f every 50 ms until it returns nil, failing the test with its last error
// after waitFor.
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %s: %v", what, waitFor, err)
}

// newNamespace creates a namespace of its own for one test.
func newNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("qs-%08x", rand.Uint32())}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func create(t testing.TB, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
}

// update re-reads obj, applies change and writes it, retrying on conflicts.
func update[T client.Object](t testing.TB, obj T, change func(T)) {
	t.Helper()
	eventually(t, "updating "+obj.GetName(), func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return env.Client.Update(context.Background(), obj)
	})
}

// updateStatus re-reads obj, applies change and writes its status, retrying on conflicts.
func updateStatus[T client.Object](t testing.TB, obj T, change func(T)) {
	t.Helper()
	eventually(t, "updating the status of "+obj.GetName(), func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return env.Client.Status().Update(context.Background(), obj)
	})
}

// setAvailable plays the Deployment controller: it reports the Deployment's replicas ready
// and its Available condition.
func setAvailable(t testing.TB, ns, name string, available bool) {
	t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	updateStatus(t, d, func(d *appsv1.Deployment) {
		n := ptr.Deref(d.Spec.Replicas, 1)
		ready, status, reason := n, corev1.ConditionTrue, "MinimumReplicasAvailable"
		if !available {
			ready, status, reason = 0, corev1.ConditionFalse, "MinimumReplicasUnavailable"
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: ready, AvailableReplicas: ready,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: status, Reason: reason,
				LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		}
	})
}

// getQS reads a QwenService.
func getQS(t testing.TB, ns, name string) *v1alpha1.QwenService {
	t.Helper()
	qs := &v1alpha1.QwenService{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, qs); err != nil {
		t.Fatal(err)
	}
	return qs
}

// waitCondition waits until the service's status describes its generation and condition typ
// has status and reason.
func waitCondition(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string) *v1alpha1.QwenService {
	t.Helper()
	var qs *v1alpha1.QwenService
	eventually(t, fmt.Sprintf("%s %s=%s/%s", name, typ, status, reason), func() error {
		qs = getQS(t, ns, name)
		c := meta.FindStatusCondition(qs.Status.Conditions, typ)
		switch {
		case qs.Status.ObservedGeneration != qs.Generation:
			return fmt.Errorf("observedGeneration %d, generation %d", qs.Status.ObservedGeneration, qs.Generation)
		case c == nil:
			return fmt.Errorf("no %s condition in %+v", typ, qs.Status.Conditions)
		case c.Status != status || c.Reason != reason:
			return fmt.Errorf("%s is %s/%s: %s", typ, c.Status, c.Reason, c.Message)
		case c.ObservedGeneration != qs.Generation:
			return fmt.Errorf("%s describes generation %d, not %d", typ, c.ObservedGeneration, qs.Generation)
		}
		return nil
	})
	return qs
}

// live reads the object of kind and name as unstructured; nil when it does not exist or is
// being deleted.
func live(t testing.TB, apiVersion, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, u)
	if apierrors.IsNotFound(err) || (err == nil && u.GetDeletionTimestamp() != nil) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// waitGone waits until the object is deleted (or being deleted: envtest runs no controller to
// clear finalizers such as kubernetes.io/pvc-protection).
func waitGone(t testing.TB, apiVersion, kind, ns, name string) {
	t.Helper()
	eventually(t, kind+" "+name+" deleted", func() error {
		if live(t, apiVersion, kind, ns, name) != nil {
			return fmt.Errorf("%s %s still exists", kind, name)
		}
		return nil
	})
}

// waitField waits until a field of the object equals want.
func waitField(t testing.TB, apiVersion, kind, ns, name string, want any, path ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s %s %v = %v", kind, name, path, want), func() error {
		u := live(t, apiVersion, kind, ns, name)
		if u == nil {
			return fmt.Errorf("%s %s does not exist", kind, name)
		}
		got, _, err := unstructured.NestedFieldNoCopy(u.Object, path...)
		if err != nil || !reflect.DeepEqual(got, want) {
			return fmt.Errorf("got %v (%v)", got, err)
		}
		return nil
	})
}

// matchesRender checks that every object Render makes of the live service, policy and plan
// exists with every rendered field at its rendered value.
func matchesRender(t testing.TB, in render.Inputs) error {
	objs, err := render.Render(in)
	if err != nil {
		return err
	}
	for _, o := range objs {
		want, err := render.ToUnstructured(o)
		if err != nil {
			return err
		}
		got := live(t, want.GetAPIVersion(), want.GetKind(), want.GetNamespace(), want.GetName())
		if got == nil {
			return fmt.Errorf("%s %s does not exist", want.GetKind(), want.GetName())
		}
		if err := contains(want.GetKind()+"/"+want.GetName(), want.Object, got.Object); err != nil {
			return err
		}
	}
	return nil
}

// contains reports the first field of want that got lacks or holds another value; got may
// have more fields (server defaults). Lists must have the same length.
func contains(path string, want, got any) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %v", path, got)
		}
		for k, wv := range w {
			if err := contains(path+"."+k, wv, g[k]); err != nil {
				return err
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: want %d items, got %v", path, len(w), got)
		}
		for i := range w {
			if err := contains(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); err != nil {
				return err
			}
		}
	default:
		if !reflect.DeepEqual(want, got) {
			return fmt.Errorf("%s: want %v (%T), got %v (%T)", path, want, want, got, got)
		}
	}
	return nil
}

// inputsOf reads the service, the given policy and plan (empty names: none) as render inputs.
func inputsOf(t testing.TB, ns, name, policy, plan string) render.Inputs {
	t.Helper()
	in := render.Inputs{Service: getQS(t, ns, name), Defaults: testDefaults, HTTPRouteServed: true}
	ctx := context.Background()
	if policy != "" {
		in.Policy = &v1alpha1.RateLimitPolicy{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: policy}, in.Policy); err != nil {
			t.Fatal(err)
		}
	}
	if plan != "" {
		in.Plan = &v1alpha1.DegradationPlan{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: plan}, in.Plan); err != nil {
			t.Fatal(err)
		}
	}
	if in.Service.Spec.Fallback != nil {
		r := &QwenServiceReconciler{Client: env.Client}
		n, err := r.readyEndpoints(ctx, ns, render.FallbackName(in.Service))
		if err != nil {
			t.Fatal(err)
		}
		in.FallbackUnavailable = n == 0
	}
	return in
}

// waitEvent waits for an Event with reason about the named QwenService.
func waitEvent(t testing.TB, ns, name, reason string) {
	t.Helper()
	eventually(t, "Event "+reason, func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind == "QwenService" && e.Regarding.Name == name {
				if e.Reason == reason {
					return nil
				}
				seen = append(seen, e.Reason)
			}
		}
		return fmt.Errorf("no %s Event among %v", reason, seen)
	})
}

// configOf is the gateway config.yaml of a service.
func configOf(t testing.TB, ns, name string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name + "-gateway"}, cm); err != nil {
		return ""
	}
	return cm.Data["config.yaml"]
}
