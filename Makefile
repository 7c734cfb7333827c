# The commands of docs/deployment.md: `make build && make up && make smoke`. Each target exits non-zero,
# naming the fix, when what it was to do did not happen (podman-compose 1.0.3 exits 0 on failures).
# COMPOSE: `docker compose` when available, else podman-compose. URL: where `make smoke` finds the server.
# The checkout (this Makefile's directory), so `make -f <checkout>/Makefile` works from elsewhere too.
HERE := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo podman-compose)
ENGINE := $(if $(findstring podman,$(COMPOSE)),podman,docker)
IMAGE := $(or $(ARTIFACTS_IMAGE),personal-server-artifacts:latest)
URL ?= http://$(or $(ARTIFACTS_PUBLISH),127.0.0.1:8080)
ENV_FILE := $(or $(ARTIFACTS_ENV_FILE),.env)
# `make base` builds this stand-in for node:24-bookworm-slim; `make build` uses it when it exists
# (BASE=<image> chooses another; unset and absent: compose.yaml's default, node:24-bookworm-slim).
LOCAL_BASE := localhost/psa-node-base:24
BASE ?= $(shell $(ENGINE) image inspect $(LOCAL_BASE) >/dev/null 2>&1 && echo $(LOCAL_BASE))
# How long `make up` waits for the container to become healthy, in seconds.
HEALTH_TIMEOUT ?= 90
# podman drops HEALTHCHECK from OCI images: build Docker-format images.
export BUILDAH_FORMAT := docker
export COMPOSE ENGINE IMAGE LOCAL_BASE HEALTH_TIMEOUT
# podman with no containers.conf of yours: the settings hosts without systemd need (runc, cgroupfs,
# ulimits; deploy/make/containers.conf). With your own, add them there (docs/deployment.md).
ifeq ($(ENGINE)$(CONTAINERS_CONF)$(wildcard /etc/containers/containers.conf $(HOME)/.config/containers/containers.conf),podman)
export CONTAINERS_CONF := $(HERE)deploy/make/containers.conf
endif

.PHONY: base build up down logs smoke test

base:
	ENGINE=$(ENGINE) $(HERE)deploy/make/local-base.sh $(LOCAL_BASE) $${TMPDIR:-/tmp}/psa-local-base

build:
	@BASE=$(BASE) $(HERE)deploy/make/build.sh

# Nothing configured yet: start from the example (all commented out = local storage on the volume).
.env:
	@echo "no .env: copying .env.example (local storage); edit it for R2 or S3"
	cp .env.example .env

up: $(ENV_FILE)
	@$(HERE)deploy/make/up.sh

# 30 s: longer than ARTIFACTS_SHUTDOWN_GRACE (25 s); podman-compose ignores compose.yaml's stop_grace_period.
down:
	$(COMPOSE) down -t 30

logs:
	$(COMPOSE) logs artifacts

# The writer token: ARTIFACTS_WRITER_TOKEN from the environment or .env, else the one the container
# generated on its volume (podman-compose also prints its command line: keep only the token's line).
smoke:
	BASE_URL=$(URL) ARTIFACTS_WRITER_TOKEN="$${ARTIFACTS_WRITER_TOKEN:-$$($(COMPOSE) exec -T artifacts cat /data/.writer-token 2>/dev/null | grep -Ex '[A-Za-z0-9_-]{32,}')}" pnpm --silent smoke

test:
	pnpm install && pnpm test
