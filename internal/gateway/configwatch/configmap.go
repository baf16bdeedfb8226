package configwatch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ParseRef splits "NAMESPACE/NAME".
func ParseRef(ref string) (namespace, name string, err error) {
	ns, n, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || n == "" || strings.Contains(n, "/") {
		return "", "", fmt.Errorf("configmap %q: want NAMESPACE/NAME", ref)
	}
	return ns, n, nil
}

// ConfigMap watches one ConfigMap through the API server (list+watch with a field selector on
// its name, so the Role may be limited to that resourceName) and calls onChange with data[key]
// whenever it differs from the last delivered value. A missing ConfigMap or key is logged and
// the last content stays in force. It returns when ctx is done.
func ConfigMap(ctx context.Context, client kubernetes.Interface, namespace, name, key string, log *slog.Logger, onChange func([]byte)) error {
	lw := cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "configmaps", namespace,
		fields.OneTermEqualSelector(metav1.ObjectNameField, name))
	var mu sync.Mutex
	var last []byte
	delivered := false
	deliver := func(obj any) {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			return
		}
		data, ok := cm.Data[key]
		if !ok {
			log.Error("gateway ConfigMap has no config key; keeping the last config", "configmap", namespace+"/"+name, "key", key)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if delivered && bytes.Equal(last, []byte(data)) {
			return
		}
		last, delivered = []byte(data), true
		onChange(last)
	}
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.ConfigMap{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    deliver,
			UpdateFunc: func(_, obj any) { deliver(obj) },
			DeleteFunc: func(any) {
				log.Error("gateway ConfigMap deleted; keeping the last config", "configmap", namespace+"/"+name)
			},
		},
	})
	informer.RunWithContext(ctx)
	return nil
}
