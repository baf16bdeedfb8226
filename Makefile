# qwen-operator. `make setup` installs and builds every tool (cached outside the repo);
# `make test` runs every test. See README.md.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
ENV := source hack/env.sh &&

.PHONY: setup test manifests chart-sync generate build images cluster cluster-down lint bench demo demo-down fmt vet

setup: ## install Debian packages, Go tools, envtest binaries and the simulator
	bash hack/setup.sh

test: ## run every test (unit, envtest, gateway against redis/prometheus/simulator)
	$(ENV) bash hack/test.sh

manifests: ## regenerate CRDs (config/crd/bases) and RBAC (config/rbac/role.yaml), then copy them into the Helm chart
	$(ENV) "$$CONTROLLER_GEN" crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(ENV) "$$CONTROLLER_GEN" rbac:roleName=qwen-operator-manager paths=./controllers/... output:rbac:artifacts:config=config/rbac
	$(MAKE) chart-sync

CHART := charts/qwen-operator
chart-sync: ## copy the CRDs, the manager's RBAC rules and the Grafana dashboard from config/ into the Helm chart (test/install checks the copies)
	rm -f $(CHART)/files/crds/*.yaml
	mkdir -p $(CHART)/files/crds
	cp config/crd/bases/*.yaml $(CHART)/files/crds/
	if [ -f config/rbac/role.yaml ]; then cp config/rbac/role.yaml $(CHART)/files/manager-role.yaml; else rm -f $(CHART)/files/manager-role.yaml; fi
	cp config/grafana/qwen-operator-dashboard.json $(CHART)/files/qwen-operator-dashboard.json

generate: ## regenerate deepcopy functions
	$(ENV) "$$CONTROLLER_GEN" object:headerFile=hack/boilerplate.go.txt paths=./api/...

build: ## build static binaries into bin/: manager, gateway, and the test images' pause and dcgm-exporter
	go run ./hack/images -binaries-only

images: ## build the images offline into bin/images/*.tar (OCI): manager, gateway, and the test images (simulator, pause, CoreDNS, DCGM exporter)
	$(ENV) go run ./hack/images

cluster: ## start a real one-node Kubernetes with the images imported (root; after make setup); prints the kubeconfig
	$(ENV) go run ./hack/cluster up

cluster-down: ## stop the node make cluster started and remove what it created
	$(ENV) go run ./hack/cluster down

demo: ## run the whole product locally, no cluster or GPU needed (after make setup); prints the endpoint and commands to try
	$(ENV) bash hack/demo/up.sh

demo-down: ## stop exactly the processes make demo started
	bash hack/demo/down.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	go vet ./...
