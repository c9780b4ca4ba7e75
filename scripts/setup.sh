# Sourced by scripts/run and scripts/test: installs what Siaga needs on a Debian/Ubuntu machine.
#   - Debian packages (mosquitto, mosquitto-clients, influxdb) when missing and run as root;
#   - a virtualenv in .venv with Siaga and the extras named in $SIAGA_EXTRAS.
# Re-running is cheap: packages are checked by command, the venv by a hash of pyproject.toml.

siaga_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$siaga_root"

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

install_debian_packages() {
  local missing=()
  have mosquitto || missing+=(mosquitto)
  have mosquitto_pub || missing+=(mosquitto-clients)
  have influxd || missing+=(influxdb)
  python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
  if [[ ",${SIAGA_EXTRAS:-}," == *,test,* ]]; then
    # The tests start their own PostgreSQL (initdb, pg_ctl) and drive a real browser.
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
    have chromium || missing+=(chromium)
    have chromedriver || missing+=(chromium-driver)
  fi
  if [[ ",${SIAGA_EXTRAS:-}," == *,test,* || ",${SIAGA_EXTRAS:-}," == *,sms,* ]]; then
    # python-gammu builds against libgammu (SMS through a GSM modem; its dummy driver in tests).
    [ -e /usr/include/gammu/gammu.h ] || missing+=(libgammu-dev)
    have pkg-config || missing+=(pkg-config)
    have gcc || missing+=(gcc)
  fi
  if [[ ",${SIAGA_EXTRAS:-}," == *,test,* ]]; then
    have wrk || missing+=(wrk)  # the public page's load benchmark
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "Siaga needs: ${missing[*]}. Run this as root, or: sudo apt-get install ${missing[*]}" >&2
    return 1
  fi
  echo "==> installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the packages from starting system services (containers, CI machines).
  local policy=/usr/sbin/policy-rc.d restore=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; restore=1; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$restore" ] && rm -f "$policy"
  return 0
}

install_virtualenv() {
  local extras=${SIAGA_EXTRAS:-}
  local spec="."
  [ -n "$extras" ] && spec=".[${extras}]"
  local stamp=".venv/.siaga-installed"
  local want
  want="$(sha256sum pyproject.toml | cut -c1-16) ${extras}"
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    python3 -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing siaga${extras:+ [$extras]} into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e "$spec"
    echo "$want" >"$stamp"
  fi
}

install_debian_packages
install_virtualenv
