# ipamd: one Bun binary that is a CNI IPAM plugin, its node daemon and its admin CLI.
BUN := node_modules/.bin/bun
SOCKET ?= /run/ipamd/ipamd.sock
DB ?= /var/lib/ipamd/ipamd.db
CONFIG ?= scripts/default-pools.yaml
SOURCES := $(shell find src -name '*.ts' -o -name '*.tsx') package.json

.PHONY: all build run test bench bench-cluster bench-kube typecheck clean deps system-deps image kube-apiserver

all: build

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Debian packages the tests and `make run` use: the bridge and host-local plugins (the
# end-to-end chain and the benchmark's peer), iproute2 and ping for network namespaces, etcd
# (the cluster store's tests start real members), promtool (checks /metrics), chromium (the
# dashboard's browser test), openssl (test certificates) and systemd (systemd-analyze verify).
SYSTEM_PACKAGES := containernetworking-plugins iproute2 iputils-ping etcd-server etcd-client prometheus chromium openssl systemd
system-deps:
	@if ! { command -v ip && command -v ping && command -v etcd && command -v promtool && command -v chromium \
		&& command -v openssl && command -v systemd-analyze && test -x /usr/lib/cni/bridge; } >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); \
	fi

deps: system-deps node_modules/.installed

# --bytecode saves ~2 ms of parse time on every plugin exec; see DESIGN.md. --splitting puts each
# lazily imported face (plugin, CLI, daemon) in its own embedded chunk, so a plugin exec no longer
# loads the daemon's bytecode before main.ts runs (~1 ms per exec; scripts/bench.ts measures it).
dist/ipamd: node_modules/.installed $(SOURCES)
	$(BUN) build src/main.ts --compile --splitting --minify --bytecode --format=esm --target=bun --outfile dist/ipamd

build: dist/ipamd

# Installs what is missing, builds, and starts the daemon in the foreground on the embedded store.
run: deps build
	dist/ipamd serve --socket $(SOCKET) --db $(DB) --config $(CONFIG)

test: deps build typecheck kube-apiserver
	$(BUN) test

# A real kube-apiserver and etcd for test/kube (scripts/kube-apiserver/README.md), built from the Go
# module proxy into /var/cache/ipamd-kube; ~7 minutes cold on 2 cores, instant once cached.
kube-apiserver:
	scripts/kube-apiserver/build.sh

# Issue 4's suite (scripts/bench.ts, sections in scripts/bench-suite/): plugin exec cost against Debian's
# host-local and a bare Bun program (empty, 10k in use), flatness at 100k and 1M, socket throughput
# at 1/16/64/256 clients, RSS and restart with 1M, cost growth. Prints a Markdown table, writes
# bench/results.json and bench/growth.svg; ~5 minutes. BENCH_SAMPLES, BENCH_MAX, BENCH_OPS shrink it.
# Then the cluster-store figures of issue 7 (bench-cluster, below; ~1 minute) and the
# Kubernetes-API store's of issue 17 (scripts/bench-kube.ts: against the etcd store and raw
# creates on the same API server; ~1 minute, needs `make kube-apiserver`). All always run;
# the exit status is the worst of them (1: a target MISSED, 2: the run failed).
bench: deps build kube-apiserver
	@$(BUN) scripts/bench.ts; suite=$$?; $(BUN) scripts/bench-cluster.ts; cluster=$$?; $(BUN) scripts/bench-kube.ts; kube=$$?; \
	worst=$$(( suite > cluster ? suite : cluster )); exit $$(( worst > kube ? worst : kube ))

typecheck: node_modules/.installed
	node_modules/.bin/tsc --noEmit -p .

clean:
	rm -rf dist

# The container image (k8s/Containerfile): only dist/ipamd on distroless/base, built with
# whichever of podman, docker or buildah is installed. `make image IMAGE=registry/ipamd:tag`.
VERSION := $(shell sed -n 's/^export const VERSION = "\(.*\)";$$/\1/p' src/version.ts)
IMAGE ?= ipamd:$(VERSION)
CONTAINER_ENGINE ?= $(shell command -v podman || command -v docker || command -v buildah)
.PHONY: image
image: build
	@test -n "$(CONTAINER_ENGINE)" || { echo "make image: needs podman, docker or buildah" >&2; exit 1; }
	$(CONTAINER_ENGINE) build -f k8s/Containerfile -t $(IMAGE) dist

# Three daemons on a real 3-member TLS etcd cluster against raw etcd throughput (issue 7).
bench-cluster: deps build
	$(BUN) scripts/bench-cluster.ts

# Three daemons on the Kubernetes-API store against the etcd store and raw creates (issue 17).
bench-kube: deps build kube-apiserver
	$(BUN) scripts/bench-kube.ts
