# The commands of docs/deployment.md. `make build && make up`, then `make smoke`.
# COMPOSE: `docker compose` when available, else podman-compose. URL: where `make smoke` finds the server.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo podman-compose)
URL ?= http://$(or $(ARTIFACTS_PUBLISH),127.0.0.1:8080)
ENV_FILE := $(or $(ARTIFACTS_ENV_FILE),.env)
# podman drops HEALTHCHECK from OCI images: build Docker-format images.
export BUILDAH_FORMAT := docker

.PHONY: build up down logs smoke test

build:
	$(COMPOSE) build

# Nothing configured yet: start from the example (all commented out = local storage on the volume).
.env:
	@echo "no .env: copying .env.example (local storage); edit it for R2 or S3"
	cp .env.example .env

up: $(ENV_FILE)
	$(COMPOSE) up -d

down:
	$(COMPOSE) down

logs:
	$(COMPOSE) logs artifacts

# The writer token: ARTIFACTS_WRITER_TOKEN from the environment or .env, else the one the container
# generated on its volume (podman-compose also prints its command line: keep only the token's line).
smoke:
	BASE_URL=$(URL) ARTIFACTS_WRITER_TOKEN="$${ARTIFACTS_WRITER_TOKEN:-$$($(COMPOSE) exec -T artifacts cat /data/.writer-token 2>/dev/null | grep -Ex '[A-Za-z0-9_-]{32,}')}" pnpm --silent smoke

test:
	pnpm install && pnpm test
