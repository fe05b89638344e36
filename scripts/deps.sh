#!/usr/bin/env bash
# Install the system packages DevKit DPS needs on a fresh Debian machine (root, or sudo), from
# the package registries only. Idempotent: skips what is already there, and says what it
# installs and why before installing.
#   bash scripts/deps.sh demo   what building devkit and running the demo need (provision-demo)
#   bash scripts/deps.sh test   that, plus what the tests need (scripts/test; the default)
set -euo pipefail
what="${1:-test}"
need=()
why=()
want() { # reason, packages...
  local reason="$1" missing=() pkg
  shift
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    need+=("${missing[@]}")
    why+=("  ${missing[*]}: $reason")
  fi
}
# Building devkit: the serial-port and USB crates link against libudev.
want "to build devkit (serial ports and USB)" libudev-dev pkg-config
if [ "$what" = test ]; then
  want "for the OpenOCD flash backend's tests" openocd
  # The real-builder test (server/tests/real_build.rs) compiles a sketch with Debian's
  # arduino-builder and arm-none-eabi-gcc against a small AZ3166-layout platform of our own.
  want "for the real-build test (the ARM toolchain and arduino-builder; not needed by the demo)" \
    arduino-builder arduino-ctags gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
  if [ "${DEVKIT_WITH_EXTENSION:-0}" = 1 ]; then
    # The extension's tests run in a real VS Code (code-server) driven by headless Chromium.
    want "for the extension's tests in a real VS Code (headless Chromium)" chromium libkrb5-dev ripgrep
  fi
elif [ "$what" != demo ]; then
  echo "usage: bash scripts/deps.sh [demo|test]" >&2
  exit 2
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing system packages with apt-get (${#need[@]}):"
  printf '%s\n' "${why[@]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "Installed: ${need[*]}"
fi
