#!/usr/bin/env bash
# Install what building and testing DevKit DPS needs on a fresh Debian machine (root), from the
# package registries only. Idempotent: skips what is already there.
set -euo pipefail
need=()
# The real-builder test (server/tests/real_build.rs) compiles a sketch with Debian's
# arduino-builder and arm-none-eabi-gcc against a small AZ3166-layout platform of our own.
for pkg in libudev-dev pkg-config openocd arduino-builder arduino-ctags gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${DEVKIT_WITH_EXTENSION:-0}" = 1 ]; then
  # The extension's tests run in a real VS Code (code-server) driven by headless Chromium.
  for pkg in chromium libkrb5-dev ripgrep; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
