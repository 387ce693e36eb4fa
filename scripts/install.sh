#!/usr/bin/env bash
# make install: lays out the daemon, its configuration and its systemd unit (docs/operations.md).
#
#   $PREFIX/bin/qqgateway                       the binary (built here first)
#   $SYSCONFDIR/qqgateway/gateway.toml          the example configuration, only if there is none,
#                                               mode 0640, the database in /var/lib/qqgateway
#   $PREFIX/lib/systemd/system/qqgateway.service
#   $PREFIX/lib/sysusers.d/qqgateway.conf       the qqgateway system user
#
# Everything goes under $DESTDIR when it is set (a package build, a test). Without DESTDIR and as
# root it also creates the user and makes the configuration root:qqgateway, so the service can
# read it, and reloads systemd. PREFIX defaults to /usr/local, SYSCONFDIR to /etc.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
bindir=$PREFIX/bin
unitdir=$PREFIX/lib/systemd/system
sysusersdir=$PREFIX/lib/sysusers.d
conf=$SYSCONFDIR/qqgateway/gateway.toml
db=/var/lib/qqgateway/qqgateway.db # the unit's StateDirectory

"$GO" build -o bin/qqgateway ./cmd/qqgateway
install -D -m 0755 bin/qqgateway "$DESTDIR$bindir/qqgateway"
install -d -m 0755 "$DESTDIR$unitdir" "$DESTDIR$sysusersdir"
sed -e "s|/usr/local/bin/qqgateway|$bindir/qqgateway|" -e "s|/etc/qqgateway/|$SYSCONFDIR/qqgateway/|" \
  scripts/qqgateway.service >"$DESTDIR$unitdir/qqgateway.service"
chmod 0644 "$DESTDIR$unitdir/qqgateway.service"
install -m 0644 scripts/qqgateway.sysusers "$DESTDIR$sysusersdir/qqgateway.conf"

created=0
if [ -e "$DESTDIR$conf" ]; then
  echo "install: kept $DESTDIR$conf as it is"
else
  install -d -m 0755 "$DESTDIR$SYSCONFDIR/qqgateway"
  (umask 027 && sed "s|^path = \"qqgateway.db\"\$|path = \"$db\"|" gateway.toml >"$DESTDIR$conf")
  chmod 0640 "$DESTDIR$conf"
  # The example's relative path would land wherever -backup is run from.
  grep -qx "path = \"$db\"" "$DESTDIR$conf" || { echo "install: gateway.toml has no [store] path line to point at $db" >&2; exit 1; }
  created=1
  echo "install: wrote $DESTDIR$conf: set [component] jid, server and secret there"
fi

if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ]; then
  systemd-sysusers "$sysusersdir/qqgateway.conf"
  [ $created = 0 ] || chgrp qqgateway "$conf"
  # The unit's StateDirectory; made now so that -check-config passes before the first start.
  install -d -m 0700 -o qqgateway -g qqgateway "$(dirname "$db")"
  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
  echo "install: done; start it with: systemctl enable --now qqgateway"
else
  echo "install: done under ${DESTDIR:-/}; the qqgateway user (sysusers.d) and the group of $conf are left to the package"
fi
