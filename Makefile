# Every target installs what it needs: a fresh machine of this kind needs no manual step.
SHELL := /bin/bash
export UV_CACHE_DIR ?= $(HOME)/.cache/uv
UV := scripts/ensure-uv.sh
PYTEST_ARGS ?=
# The runtime image's engine (an extra of runtime/pyproject.toml): onnx, paddle, ...
ENGINE ?= onnx

.PHONY: setup run test test-unit lint infra-up infra-down cluster-up cluster-down \
        operator-run bench bench-full tools smoke clean images simulate demo

setup:  ## install the Python workspace (runtime + operator + dev tools) from uv.lock
	@$(UV) sync --frozen

run: setup  ## the embedded all-in-one OCR server on http://127.0.0.1:8000
	@$(UV) run --frozen ocr-runtime all-in-one

lint: setup  ## ruff, mypy --strict and the import-layer contracts
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy
	@$(UV) run --frozen lint-imports

test-unit: setup  ## unit tests only: no service needed
	@$(UV) run --frozen pytest -m "not integration and not e2e" $(PYTEST_ARGS)

test:  ## everything: lint, unit, integration and end-to-end tests (scripts/test.sh)
	@scripts/test.sh $(PYTEST_ARGS)

infra-up:  ## Kafka (KRaft), MariaDB, Redis, Prometheus on loopback; writes .local/env
	@scripts/infra/infra.sh up

infra-down:
	@scripts/infra/infra.sh down

cluster-up:  ## etcd + kube-apiserver + controller-manager + scheduler + kwok GPU nodes
	@scripts/infra/cluster.sh up

cluster-down:
	@scripts/infra/cluster.sh down

keda-up:  ## KEDA (kafka, cpu and memory scalers) on the local cluster's real node
	@scripts/infra/keda.sh up

images:  ## with podman, no Docker: localhost/ocr-runtime:dev-$(ENGINE), localhost/ocr-operator:dev
	@ENGINE=$(ENGINE) scripts/images.sh build

operator-run: setup  ## the operator against the current KUBECONFIG
	@$(UV) run --frozen ocr-operator run

bench: setup infra-up cluster-up images  ## quick benchmarks (2-core machine), writes docs/benchmarks.md
	@set -a; . .local/env; set +a; $(UV) run --frozen python -m benchmarks --quick

demo: setup infra-up cluster-up images  ## the golden path: operator (Helm) + examples/standard.yaml on the local cluster's real node
	@export KUBECONFIG="$(CURDIR)/.local/kubeconfig"; \
	helm="$$(scripts/tools.sh helm)"; \
	kubectl apply --server-side --force-conflicts -f crds/ >/dev/null && \
	"$$helm" upgrade --install ocr-operator charts/ocr-operator -n ocr-system --create-namespace \
	  -f examples/local/operator-values.yaml --wait && \
	kubectl apply -n ocr -f examples/standard.yaml && \
	kubectl wait -n ocr ocrs/standard --for=condition=Ready --timeout=15m && \
	kubectl get ocrs -n ocr -o wide && \
	echo && echo "Send a request (the API wants the key the operator generated):" && \
	echo "  KEY=\"\$$(kubectl get secret -n ocr standard-api-key -o jsonpath='{.data.api-key}' | base64 -d)\"" && \
	echo "  kubectl port-forward -n ocr svc/standard-api 8080:80 &" && \
	echo "  curl -H \"Authorization: Bearer \$$KEY\" -F image=@examples/local/sample.png 'http://127.0.0.1:8080/v1/ocr?timeout=60'"

simulate: setup  ## the advisor's simulated day: comparison table, docs/advisor.md figures and plot
	@$(UV) run --frozen python -m ocr_operator.simulate --doc docs/advisor.md --plot docs/advisor-simulated-day.png

bench-full: setup infra-up cluster-up images
	@set -a; . .local/env; set +a; $(UV) run --frozen python -m benchmarks --full

tools:  ## helm and promtool, built or extracted into ~/.cache/ocr-serving
	@scripts/tools.sh all

smoke:  ## smoke test of a running stack (default http://127.0.0.1:8000; SMOKE_URL=...)
	@scripts/smoke_test.sh $(SMOKE_URL)

clean: infra-down cluster-down
	rm -rf .local
