package main

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/qwenops/qwen-operator/controllers"
)

// setupControllers registers the reconcilers with the manager. Each controller issue adds its
// reconciler here; none is registered before it does real work.
func setupControllers(mgr ctrl.Manager, d Defaults) error {
	qs := &controllers.QwenServiceReconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("qwen-operator"),
		Defaults: d.Defaults,
	}
	ctx := context.Background()
	if err := qs.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	rlp := &controllers.RateLimitPolicyReconciler{
		Client:            mgr.GetClient(),
		Recorder:          mgr.GetEventRecorder("qwen-operator"),
		PrometheusURL:     d.PrometheusURL,
		TelemetryInterval: d.AdaptiveInterval,
	}
	if err := rlp.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	dp := &controllers.DegradationPlanReconciler{
		Client:        mgr.GetClient(),
		Recorder:      mgr.GetEventRecorder("qwen-operator"),
		PrometheusURL: d.PrometheusURL,
	}
	return dp.SetupWithManager(ctx, mgr)
}
