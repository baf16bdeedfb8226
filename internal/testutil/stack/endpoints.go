package stack

import (
	"context"
	"maps"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// standInAddress is the endpoint address of a local stand-in in its EndpointSlice (TEST-NET-1:
// nothing dials it; the demo gateway reaches the stand-ins through its resolve map).
const standInAddress = "192.0.2.1"

// reflectEndpoints writes the EndpointSlice the EndpointSlice controller would keep for a
// Service whose one pod is as ready as the local process: the Service's labels copied, one
// endpoint, ready or not. The operator reads it to tell the gateway whether the fallback may
// take traffic. It writes only when the readiness differs from the slice stored.
func reflectEndpoints(ctx context.Context, cs kubernetes.Interface, ns, service string, healthy bool) error {
	svc, err := cs.CoreV1().Services(ns).Get(ctx, service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	labels := maps.Clone(svc.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[discoveryv1.LabelServiceName] = service
	labels[discoveryv1.LabelManagedBy] = "qwen-demo-agent"
	want := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: service + "-local", Labels: labels},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{standInAddress}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(healthy)}}},
	}
	for _, p := range svc.Spec.Ports {
		want.Ports = append(want.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.Port), Protocol: ptr.To(p.Protocol)})
	}
	slices := cs.DiscoveryV1().EndpointSlices(ns)
	cur, err := slices.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, want, metav1.CreateOptions{})
		return err
	case err != nil:
		return err
	case len(cur.Endpoints) == 1 && ptr.Deref(cur.Endpoints[0].Conditions.Ready, true) == healthy && maps.Equal(cur.Labels, labels):
		return nil
	}
	cur.Labels, cur.Endpoints, cur.Ports = labels, want.Endpoints, want.Ports
	_, err = slices.Update(ctx, cur, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil // next tick
	}
	return err
}
