#!/usr/bin/env bash
# Debian packages the project needs: PostgreSQL + PostGIS, Chromium (UI tests, PNG export),
# python3-venv and npm (web assets). Installs only what is missing, so a second run is instant.
set -euo pipefail
PKGS=(postgresql-15-postgis-3 postgresql-contrib chromium python3-venv npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from nodesource or similar instead of Debian: accept any working npm.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "Cài gói hệ thống / installing Debian packages: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
