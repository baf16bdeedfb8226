package main

import (
	ctrl "sigs.k8s.io/controller-runtime"
)

// setupControllers registers the reconcilers with the manager. Each controller issue adds its
// reconciler here; none is registered before it does real work.
func setupControllers(mgr ctrl.Manager, d Defaults) error {
	_ = mgr
	_ = d
	return nil
}
