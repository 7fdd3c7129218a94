#!/usr/bin/env bash
# `npm run test:busy [-- --cpu N] [vitest arguments]`: the whole suite (`npm test`) beside a CPU hog that this
# script starts and stops itself: `stress-ng --cpu N` (default: one hog per core, so every core is taken), at the
# suite's own priority. A test that passes quietly but fails here waits on time instead of on an event: make it
# await the event, poll the condition with a deadline, or drive an injected clock (docs/development.md).
# stress-ng is installed with apt-get when missing (as root, or through sudo), as scripts/test-deps.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."

cpus="$(nproc)"
if [ "${1:-}" = "--cpu" ]; then
  cpus="${2:?--cpu needs a number of hogs}"
  shift 2
fi
case "$cpus" in '' | *[!0-9]*) echo "test:busy: --cpu takes a whole number of hogs, not '$cpus'" >&2; exit 2 ;; esac

if ! command -v stress-ng >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "test:busy needs stress-ng (not found on PATH): install it with your package manager." >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
      echo "test:busy needs stress-ng. Run as root: apt-get update && apt-get install -y --no-install-recommends stress-ng" >&2
      exit 1
    fi
  fi
  echo "installing stress-ng from apt for test:busy"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends stress-ng >/dev/null
fi

stress-ng --cpu "$cpus" --quiet &
hog=$!
trap 'kill "$hog" 2>/dev/null; wait "$hog" 2>/dev/null || true' EXIT
echo "test:busy: stress-ng --cpu $cpus (pid $hog) beside the suite"
npm test -- "$@"
