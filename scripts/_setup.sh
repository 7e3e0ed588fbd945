# Shared by scripts/demo and scripts/test: system packages, a virtualenv, the project.
# Works on a fresh Debian 12 with Python 3.11, as root or with sudo.
# The Debian packages to ensure are in SIMROTOR_APT (space-separated); the calling
# script's own arguments are left alone (they belong to simrotor / pytest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${SIMROTOR_VENV:-$ROOT/.venv}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
for pkg in ${SIMROTOR_APT:-}; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "simrotor setup: installing Debian packages: ${need_apt[*]}" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
# Redoc for the controller's /docs, from the npm registry, pinned and integrity-checked
# (controller/static/, not in git); without it /docs is the plain server-rendered page.
"$VENV/bin/python" "$ROOT/scripts/vendor-redoc" \
    || echo "simrotor setup: Redoc not vendored; the controller's /docs shows its plain page" >&2
