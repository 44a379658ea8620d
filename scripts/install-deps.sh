#!/usr/bin/env bash
# Installs every Debian package (and the npm packages) that building, testing,
# benchmarking and the demo need. Idempotent: apt runs only when something is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

# One package list per part of the tree, so each part owns its own dependencies.
pkgs=$(cat "$here"/deps/*.txt | sed 's/#.*//' | tr -s ' \t\n' '\n' | sed '/^$/d' | sort -u)

missing=()
for p in $pkgs; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages (browser tests, ORT peer), from the lock file, scripts off.
if [ -f "$root/package.json" ] && command -v npm >/dev/null; then
    if [ ! -d "$root/node_modules" ] || [ "$root/package.json" -nt "$root/node_modules/.stamp" ]; then
        (cd "$root" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null && touch node_modules/.stamp)
    fi
fi
exit 0
