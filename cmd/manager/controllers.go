package main

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/qwenops/qwen-operator/controllers"
)

// setupControllers registers the field indexes the reconcilers list by, once, and then the
// reconcilers with the manager; workers QwenServices are reconciled at once.
func setupControllers(mgr ctrl.Manager, d Defaults, workers int) error {
	if err := controllers.SetupIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	recorder := mgr.GetEventRecorder("qwen-operator")
	for _, r := range []interface{ SetupWithManager(ctrl.Manager) error }{
		&controllers.QwenServiceReconciler{Client: mgr.GetClient(), Recorder: recorder, Defaults: d.Defaults, MaxConcurrentReconciles: workers},
		&controllers.RateLimitPolicyReconciler{Client: mgr.GetClient(), Recorder: recorder,
			PrometheusURL: d.PrometheusURL, TelemetryInterval: d.AdaptiveInterval, AllowedPrometheusURLs: d.AllowedPrometheusURLs},
		&controllers.DegradationPlanReconciler{Client: mgr.GetClient(), Recorder: recorder, PrometheusURL: d.PrometheusURL,
			AllowedPrometheusURLs: d.AllowedPrometheusURLs},
	} {
		if err := r.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return nil
}
