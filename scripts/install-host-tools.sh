#!/usr/bin/env bash
# Install what the cluster needs on a Debian/Ubuntu host and nothing more:
#   - Docker Compose v2 and buildx as Docker CLI plugins, when `docker compose`
#     or `docker buildx` is missing (Debian bookworm only packages Compose v1);
#   - debootstrap, to make a Debian base image where none can be pulled;
#   - python3-venv, for the scripts' virtual environment;
#   - for the tests only: chromium and chromium-driver, the browser the UI test
#     drives with Selenium (not needed by `make up`).
# The plugins come from Debian trixie's packages, fetched with a private apt
# state so the host's own sources stay untouched. Run as root; safe to rerun.
#
#   scripts/install-host-tools.sh           install what is missing, browser too (root)
#   scripts/install-host-tools.sh --ensure  what `make up` / `make smoke` run first:
#       nothing missing: silent; missing and root: install it, saying what and
#       from where; missing and not root: one line naming the sudo command, exit 1.
#   scripts/install-host-tools.sh --ensure-test  the same, browser included
#       (`make integration-test`).
set -euo pipefail

PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
TRIXIE_MIRROR=${TRIXIE_MIRROR:-http://deb.debian.org/debian}

log() { printf '==> %s\n' "$*"; }

with_browser=yes
[ "${1:-}" = "--ensure" ] && with_browser=no

missing_apt() {
  command -v debootstrap >/dev/null 2>&1 || echo debootstrap
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || echo python3-venv
  if [ "$with_browser" = yes ]; then
    command -v chromium >/dev/null 2>&1 || echo chromium
    command -v chromedriver >/dev/null 2>&1 || echo chromium-driver
  fi
  return 0
}

missing_plugins() {
  docker compose version >/dev/null 2>&1 || echo docker-compose
  docker buildx version >/dev/null 2>&1 || echo docker-buildx
  return 0
}

mapfile -t need_apt < <(missing_apt)
mapfile -t need_plugins < <(missing_plugins)
need_all="${need_apt[*]} ${need_plugins[*]}"
need_all=$(echo $need_all)  # one space between names, none at the ends

if [ "${1:-}" = "--ensure" ] || [ "${1:-}" = "--ensure-test" ]; then
  [ -z "$need_all" ] && exit 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "airflow-ha: error: this host lacks $need_all; run once: sudo scripts/install-host-tools.sh" >&2
    exit 1
  fi
  log "this host lacks $need_all: installing (running as root)"
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--ensure | --ensure-test]" >&2
  exit 2
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} from the host's apt sources"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ${#need_plugins[@]} -eq 0 ]; then
  log "docker compose and buildx plugins already present"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/state/lists/partial" "$work/cache/archives/partial" "$work/etc"
echo "deb $TRIXIE_MIRROR trixie main" > "$work/etc/sources.list"
apt_private=(
  -o "Dir::State=$work/state" -o "Dir::Cache=$work/cache"
  -o "Dir::Etc::SourceList=$work/etc/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root"
)
log "fetching ${need_plugins[*]} from Debian trixie ($TRIXIE_MIRROR) into $PLUGIN_DIR"
apt-get "${apt_private[@]}" update -qq
(cd "$work" && apt-get "${apt_private[@]}" download "${need_plugins[@]}" >/dev/null)

mkdir -p "$PLUGIN_DIR"
for deb in "$work"/*.deb; do
  dpkg -x "$deb" "$work/root"
done
for plugin in docker-compose docker-buildx; do
  src=$(find "$work/root" -type f -path "*cli-plugins/$plugin" | head -n 1)
  if [ -n "$src" ]; then
    install -m 0755 "$src" "$PLUGIN_DIR/$plugin"
    log "installed $PLUGIN_DIR/$plugin"
  fi
done
docker compose version
docker buildx version
