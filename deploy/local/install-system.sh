#!/usr/bin/env bash
# Install the Debian packages the local stack or the tests need, if missing.
# Usage: install-system.sh redis-server [chromium]
set -euo pipefail

missing=()
for package in "$@"; do
  case "$package" in
    redis-server) command -v redis-server >/dev/null 2>&1 || missing+=(redis-server) ;;
    chromium) command -v chromium >/dev/null 2>&1 || missing+=(chromium) ;;
    *) echo "install-system.sh: unknown package $package" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing: ${missing[*]}. Install them with your package manager," >&2
  echo "or set REDIS_URL to an existing Redis server." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "Missing: ${missing[*]}. Run: apt-get install ${missing[*]} as root." >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "Installing ${missing[*]} from Debian's packages"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
