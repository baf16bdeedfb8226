# qwen-operator. `make setup` installs and builds every tool (cached outside the repo);
# `make test` runs every test. See README.md.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
ENV := source hack/env.sh &&

.PHONY: setup test manifests generate build lint bench demo demo-down fmt vet

setup: ## install Debian packages, Go tools, envtest binaries and the simulator
	bash hack/setup.sh

test: ## run every test (unit, envtest, gateway against redis/prometheus/simulator)
	$(ENV) bash hack/test.sh

manifests: ## regenerate CRDs (config/crd/bases) and RBAC (config/rbac/role.yaml)
	$(ENV) "$$CONTROLLER_GEN" crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(ENV) "$$CONTROLLER_GEN" rbac:roleName=qwen-operator-manager paths=./controllers/... output:rbac:artifacts:config=config/rbac

generate: ## regenerate deepcopy functions
	$(ENV) "$$CONTROLLER_GEN" object:headerFile=hack/boilerplate.go.txt paths=./api/...

build:
	go build -o bin/manager ./cmd/manager
	go build -o bin/gateway ./cmd/gateway

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	go vet ./...
