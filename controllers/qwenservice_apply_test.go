package controllers

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

func TestPrunePlan(t *testing.T) {
	qs := &v1alpha1.QwenService{ObjectMeta: metav1.ObjectMeta{Name: "qwen3", Namespace: "ai", UID: "qs-uid"}}
	owned := func(obj client.Object, component string, uid types.UID) client.Object {
		obj.SetName(map[string]string{
			render.ComponentEngine: "qwen3-engine", render.ComponentFallback: "qwen3-fallback",
			render.ComponentCache: "qwen3-cache", render.ComponentExposure: "qwen3", "": "qwen3-extra",
		}[component])
		obj.SetLabels(map[string]string{render.LabelComponent: component})
		if uid != "" {
			obj.SetOwnerReferences([]metav1.OwnerReference{{Kind: "QwenService", Name: "qwen3", UID: uid, Controller: ptr.To(true)}})
		}
		return obj
	}
	children := []child{
		{"Deployment", owned(&appsv1.Deployment{}, render.ComponentEngine, "qs-uid")},
		{"Deployment", owned(&appsv1.Deployment{}, render.ComponentFallback, "qs-uid")},
		{"PersistentVolumeClaim", owned(&corev1.PersistentVolumeClaim{}, render.ComponentCache, "qs-uid")},
		{"Ingress", owned(&networkingv1.Ingress{}, render.ComponentExposure, "qs-uid")},
		{"ConfigMap", owned(&corev1.ConfigMap{}, "", "qs-uid")},
		// Same labels, but controlled by a namesake QwenService that was deleted and
		// re-created, or by nobody: not ours to delete.
		{"Service", owned(&corev1.Service{}, render.ComponentFallback, "old-uid")},
		{"Service", owned(&corev1.Service{}, render.ComponentEngine, "")},
	}
	rendered := map[childKey]bool{{"Deployment", "qwen3-engine"}: true, {"Ingress", "qwen3"}: true}

	var got []string
	for _, d := range prunePlan(qs, rendered, children) {
		got = append(got, d.kind+" "+d.obj.GetName()+": "+d.why)
	}
	want := []string{
		"Deployment qwen3-fallback: spec.fallback is not set",
		"PersistentVolumeClaim qwen3-cache: spec.modelCache asks for no PVC of its own",
		"ConfigMap qwen3-extra: the render no longer produces it",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan\n got %q\nwant %q", got, want)
	}
	// The same name in another kind is another child: an Ingress kept does not keep an
	// HTTPRoute of the same name.
	route := child{"HTTPRoute", owned(&corev1.ConfigMap{}, render.ComponentExposure, "qs-uid")}
	if plan := prunePlan(qs, rendered, []child{route}); len(plan) != 1 || plan[0].why != prunedBecause[render.ComponentExposure] {
		t.Errorf("plan for a switched exposure kind: %+v", plan)
	}
}
