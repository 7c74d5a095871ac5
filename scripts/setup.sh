#!/usr/bin/env bash
# Installs what kiln's build, demo and tests need on a Debian machine.
# Idempotent: each step checks before it installs. Run as root, or as a user
# with sudo for the apt step.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages. The end-to-end harness (tests/) runs a real registry
# (docker-registry), pushes and inspects images with skopeo and umoci,
# builds base rootfs trees from busybox-static and debootstrap, makes TLS
# certificates with openssl and htpasswd files with apache2-utils, and probes
# the registry with curl; buildah is for differential tests against another
# builder. GNU time (`time`) measures peak RSS in `make bench-pull`.
APT_PACKAGES=(ca-certificates git make gcc pkg-config
  docker-registry skopeo umoci busybox-static debootstrap openssl apache2-utils buildah curl
  time)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's docker-registry package enables a system-wide registry on :5000
# (all interfaces) where systemd runs; the tests start their own on
# 127.0.0.1 only, so keep the system one off.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled docker-registry >/dev/null 2>&1; then
  log "disabling the system-wide docker-registry service"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# Rust toolchain pieces: rustfmt and clippy for the checks, the WASI targets
# the policy modules are built for.
if ! command -v rustup >/dev/null 2>&1; then
  log "rustup not found: install the Rust toolchain with rustup first"
  exit 1
fi
installed_components=$(rustup component list --installed 2>/dev/null || true)
for c in rustfmt clippy; do
  grep -q "^$c" <<<"$installed_components" || { log "adding rust component $c"; rustup component add "$c"; }
done
installed_targets=$(rustup target list --installed)
for t in wasm32-wasip1 wasm32-wasip2; do
  grep -qx "$t" <<<"$installed_targets" || { log "adding rust target $t"; rustup target add "$t"; }
done
log "ok"
