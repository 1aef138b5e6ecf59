#!/usr/bin/env bash
# Vendor the map page's browser assets from the pinned lock into web/vendor/node_modules, so the
# page (and the Folium report maps) never request a CDN at run time. Idempotent: when the
# installed lock equals web/package-lock.json the npm step is skipped (a second run takes ~0 s).
set -euo pipefail
cd "$(dirname "$0")/.."

VENDOR=web/vendor
mkdir -p "$VENDOR"
printf '*\n' > "$VENDOR/.gitignore"   # everything here is installed, never committed

if ! command -v npm >/dev/null 2>&1; then
    echo "setup-web: npm is missing (scripts/setup-system.sh installs it)" >&2
    exit 1
fi

if [ -d "$VENDOR/node_modules/leaflet" ] && cmp -s web/package-lock.json "$VENDOR/package-lock.json" \
        && cmp -s web/package.json "$VENDOR/package.json"; then
    echo "setup-web: vendored assets up to date"
else
    cp web/package.json web/package-lock.json "$VENDOR/"
    npm ci --prefix "$VENDOR" --no-audit --no-fund --ignore-scripts --loglevel=error
    echo "setup-web: installed $(ls "$VENDOR/node_modules" | wc -l) packages into $VENDOR/node_modules"
fi

# folium's weighted Leaflet.heat build (used by the report maps) ships inside the folium wheel.
PY=${PY:-.venv/bin/python}
if [ -x "$PY" ]; then
    HEAT=$("$PY" -c 'import folium, pathlib; print(pathlib.Path(folium.__file__).parent / "templates" / "leaflet_heat.min.js")')
    mkdir -p "$VENDOR/folium"
    if [ -f "$HEAT" ] && ! cmp -s "$HEAT" "$VENDOR/folium/leaflet_heat.min.js"; then
        cp "$HEAT" "$VENDOR/folium/leaflet_heat.min.js"
    fi
fi
