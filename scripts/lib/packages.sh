# shellcheck shell=bash
# Installing the Debian packages whose commands are missing: the one copy
# of that logic, sourced by scripts/demo.sh, scripts/test.sh,
# scripts/topology.sh and scripts/bench-netns.sh.
#
#   pkg_missing CMD:PACKAGE ...   print the PACKAGE of every CMD not on PATH
#   pkg_install CMD:PACKAGE ...   install those packages (apt-get, as root);
#                                 0 when every CMD is there afterwards,
#                                 1 with a message saying what is missing
#                                 and how to install it otherwise
#
# Messages go to stderr (bench-netns.sh keeps stdout for its JSON).
#
# Another apt-get or dpkg holding the package locks (unattended-upgrades on
# a fresh machine, an install in a second terminal) is waited for, up to
# XC_APT_LOCK_TIMEOUT seconds (default 300), with a message naming the
# process that holds the lock. apt and dpkg lock with fcntl(2), which is
# what /proc/locks shows and what the wait looks at (flock(1) takes a
# different kind of lock that apt neither sees nor waits for). apt-get's
# own DPkg::Lock::Timeout covers the dpkg locks of `install`; in apt 2.6 it
# does not cover the lists lock of `update`, which the poll here covers.
# Services the packages bring are not started (policy-rc.d, exit 101),
# unless the machine has a policy of its own.

XC_APT_LOCK_TIMEOUT=${XC_APT_LOCK_TIMEOUT:-300}
PKG_LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock
  /var/cache/apt/archives/lock /var/lib/apt/lists/lock)

pkg_missing() {
  local t
  for t in "$@"; do
    command -v "${t%%:*}" >/dev/null 2>&1 || printf '%s\n' "${t#*:}"
  done | awk '!seen[$0]++'
}

# pkg_lock_holder FILE...: "PID (COMMAND) holds FILE" for the first FILE
# that a process holds a POSIX (fcntl) or OFD lock on; 1 when none is held.
pkg_lock_holder() {
  local f d id pid comm
  for f in "$@"; do
    [ -e "$f" ] || continue
    d=$(stat -c %d "$f")
    # /proc/locks names a file MAJOR:MINOR:INODE, in hex, hex, decimal.
    id=$(printf '%02x:%02x:%s' $(((d >> 8) & 0xfff)) $(((d & 0xff) | ((d >> 12) & 0xfff00))) \
      "$(stat -c %i "$f")")
    pid=$(awk -v id="$id" '$2 != "->" && ($2 == "POSIX" || $2 == "OFDLCK") && $6 == id { print $5; exit }' /proc/locks)
    if [ -n "$pid" ]; then
      comm=$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")
      printf '%s (%s) holds %s\n' "$pid" "$comm" "$f"
      return 0
    fi
  done
  return 1
}

# pkg_wait_locks DEADLINE: wait until no process holds a package lock, or
# until DEADLINE (seconds since the epoch); says once what it waits for.
pkg_wait_locks() {
  local deadline=$1 holder said=0
  while holder=$(pkg_lock_holder "${PKG_LOCKS[@]}"); do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "packages: gave up waiting for the package lock after ${XC_APT_LOCK_TIMEOUT} s: $holder" \
        "(XC_APT_LOCK_TIMEOUT sets the wait)" >&2
      return 1
    fi
    if [ "$said" = 0 ]; then
      echo "==> waiting up to ${XC_APT_LOCK_TIMEOUT} s for the package lock: $holder (another apt-get or dpkg is running)" >&2
      said=1
    fi
    sleep 1
  done
  [ "$said" = 0 ] || echo "==> package lock free" >&2
}

# pkg_apt DEADLINE ARGS...: apt-get ARGS once no one holds a package lock;
# another one taking a lock between the wait and apt-get's start is waited
# for again (bounded by DEADLINE and 10 attempts).
pkg_apt() {
  local deadline=$1 err rc=1 attempt left
  shift
  err=$(mktemp)
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    pkg_wait_locks "$deadline" || break
    left=$((deadline - $(date +%s)))
    [ "$left" -gt 0 ] || left=1
    rc=0
    apt-get -o DPkg::Lock::Timeout="$left" "$@" >/dev/null 2>"$err" || rc=$?
    [ "$rc" != 0 ] || break
    if grep -q 'Could not get lock' "$err" && [ "$(date +%s)" -lt "$deadline" ] && [ "$attempt" -lt 10 ]; then
      continue
    fi
    break
  done
  [ "$rc" = 0 ] || cat "$err" >&2
  rm -f "$err"
  return "$rc"
}

pkg_install() {
  local missing=() left=() deadline own_policy=0 rc=0 why=
  mapfile -t missing < <(pkg_missing "$@")
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || why="not root"
  command -v apt-get >/dev/null 2>&1 || why="no apt-get"
  if [ -n "$why" ]; then
    echo "packages: missing ${missing[*]}, not installed ($why): sudo apt-get install ${missing[*]}" >&2
    return 1
  fi
  echo "==> installing ${missing[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  deadline=$(($(date +%s) + XC_APT_LOCK_TIMEOUT))
  { pkg_apt "$deadline" update -qq &&
    pkg_apt "$deadline" install -y -qq --no-install-recommends "${missing[@]}"; } || rc=$?
  [ "$own_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
  mapfile -t left < <(pkg_missing "$@")
  if [ "$rc" != 0 ] || [ ${#left[@]} -gt 0 ]; then
    echo "packages: installing ${missing[*]} failed${left[*]:+ (still missing: ${left[*]})}" >&2
    return 1
  fi
}
