#!/usr/bin/env bash
# Install what the cluster needs on a Debian/Ubuntu host and nothing more:
#   - Docker Compose v2 and buildx as Docker CLI plugins, when `docker compose`
#     or `docker buildx` is missing (Debian bookworm only packages Compose v1);
#   - debootstrap, to make a Debian base image where none can be pulled;
#   - python3-venv, for the scripts' virtual environment.
# The plugins come from Debian trixie's packages, fetched with a private apt
# state so the host's own sources stay untouched. Run as root; safe to rerun.
set -euo pipefail

PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
TRIXIE_MIRROR=${TRIXIE_MIRROR:-http://deb.debian.org/debian}

log() { printf '==> %s\n' "$*"; }

need_apt=()
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} from the host's apt sources"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

missing=()
docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
docker buildx version >/dev/null 2>&1 || missing+=(docker-buildx)
if [ ${#missing[@]} -eq 0 ]; then
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
log "fetching ${missing[*]} from Debian trixie"
apt-get "${apt_private[@]}" update -qq
(cd "$work" && apt-get "${apt_private[@]}" download "${missing[@]}" >/dev/null)

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
