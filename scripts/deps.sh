#!/usr/bin/env bash
# What `make demo` and `make test` need on a Debian machine, in one list, and its installation:
#
#   scripts/deps.sh demo    what make demo needs
#   scripts/deps.sh smoke   what make demo-smoke needs (the demo driven by slixmpp)
#   scripts/deps.sh test    what make test needs: everything
#
# Run as root, it installs the missing packages (apt-get update, then apt-get install). Run as
# anyone else, it prints the one command that does that and fails. Go is not a Debian package
# (Debian's is too old): it says where to get it. make, scripts/demo.sh and .ci/run call this.
set -euo pipefail

# package         | needed by        | present when this succeeds
packages='
# cgo: the SQLite driver; the certificates: Go fetching modules over HTTPS
gcc               | demo smoke test  | command -v gcc
ca-certificates   | demo smoke test  | test -s /etc/ssl/certs/ca-certificates.crt
prosody           | demo smoke test  | command -v prosody
# mod_privilege: the tests grant the transport roster access (XEP-0356)
prosody-modules   | test             | test -f /usr/lib/prosody/modules/mod_privilege/mod_privilege.lua
# the demo TLS certificate
openssl           | demo smoke test  | command -v openssl
# make demo-smoke reads the gateway metrics
curl              | smoke test       | command -v curl
# the client of make demo-smoke and make e2e
python3-slixmpp   | smoke test       | /usr/bin/python3 -c "import slixmpp"
ejabberd          | test             | command -v ejabberdctl
# make e2e drives Profanity, a real terminal client, in a tmux pane
profanity         | test             | command -v profanity
tmux              | test             | command -v tmux
# promtool checks the /metrics output
prometheus        | test             | command -v promtool
# the store tests on PostgreSQL start a server of their own (initdb, pg_ctl)
postgresql        | test             | ls /usr/lib/postgresql/*/bin/initdb
# systemd-analyze verifies scripts/qqgateway.service
systemd           | test             | command -v systemd-analyze
'

target=${1:-}
case "$target" in
  demo|smoke|test) ;;
  *) echo "usage: $0 demo|smoke|test" >&2; exit 2 ;;
esac

missing=()
while IFS='|' read -r pkg needed probe; do
  pkg=${pkg//[[:space:]]/}
  case "$pkg" in "" | "#"*) continue ;; esac
  case " $needed " in *" $target "*) ;; *) continue ;; esac
  bash -c "$probe" >/dev/null 2>&1 || missing+=("$pkg")
done <<<"$packages"

go=${GO:-go}
command -v "$go" >/dev/null 2>&1 || go=/usr/local/go/bin/go
if ! "$go" version >/dev/null 2>&1; then
  echo "deps: no Go toolchain (looked for \$GO, go in PATH, /usr/local/go/bin/go): install Go 1.26 from" \
    "https://go.dev/dl/ into /usr/local/go (Debian's golang package is too old)" >&2
  gofail=1
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "deps: make $([ "$target" = smoke ] && echo demo-smoke || echo "$target") needs ${missing[*]}; install them with:" >&2
    echo "    sudo sh -c 'apt-get update && apt-get install -y ${missing[*]}'" >&2
    exit 1
  fi
fi
[ -z "${gofail:-}" ] || exit 1
