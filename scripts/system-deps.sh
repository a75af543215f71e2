#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks start as real servers, when missing.
# Usage: scripts/system-deps.sh test|bench
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ]; }
case "${1:-test}" in
  test)
    [ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
    have_cmd redis-server /usr/bin/redis-server || need+=(redis-server)
    [ -x /usr/sbin/sshd ] || need+=(openssh-server)
    ;;
  bench)
    have_cmd wrk /usr/bin/wrk || need+=(wrk)
    ;;
esac

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]} (install them: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
