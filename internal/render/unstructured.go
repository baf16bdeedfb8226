package render

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ToUnstructured converts a rendered object into the exact content to server-side apply:
// its apiVersion, kind, metadata and spec, without status or empty timestamps.
func ToUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	var m map[string]any
	if u, ok := obj.(*unstructured.Unstructured); ok {
		m = runtime.DeepCopyJSON(u.Object)
	} else {
		var err error
		if m, err = runtime.DefaultUnstructuredConverter.ToUnstructured(obj); err != nil {
			return nil, fmt.Errorf("converting %T %s: %w", obj, obj.GetName(), err)
		}
	}
	delete(m, "status")
	stripTimestamps(m)
	u := &unstructured.Unstructured{Object: m}
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		return nil, fmt.Errorf("%T %s has no apiVersion or kind", obj, obj.GetName())
	}
	return u, nil
}

// stripTimestamps removes null creationTimestamps from metadata at any depth (pod templates).
func stripTimestamps(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if k == "creationTimestamp" && child == nil {
				delete(t, k)
				continue
			}
			stripTimestamps(child)
		}
	case []any:
		for _, child := range t {
			stripTimestamps(child)
		}
	}
}
