#!/usr/bin/env bash
# make demo: the product on this machine. Starts a throwaway Prosody (with the gateway's component
# configured), qqsim with the demo world and the gateway, all on 127.0.0.1, creates an XMPP account,
# prints how to log in with any XMPP client, runs until Ctrl-C and then stops everything it started.
#
#   scripts/demo.sh           run until Ctrl-C
#   scripts/demo.sh --smoke   bring the stack up, have a real client (slixmpp, e2e/journey.py --smoke)
#                             register, get the roster and chat with the echo bot, then stop; exit 0
#                             only if all of that worked. `make test` runs this.
#
# Everything lives under .demo/ (gitignored): .demo/run/ for the current run (configs, logs, the
# gateway's database; wiped at the next start), .demo/tls.* for the self-signed certificate (kept, so a
# client told to trust it once keeps trusting it).
set -euo pipefail

smoke=0
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
root=$PWD
GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || GO=/usr/local/go/bin/go
PYTHON=/usr/bin/python3 # Debian's, which has python3-slixmpp

HOST=localhost
TRANSPORT=qq.localhost
XMPP_USER=demo
XMPP_PASSWORD=demo-xmpp
WORLD=qqproto/qqsim/demo-world.toml
QQ_NUMBER=10001
QQ_PASSWORD=demo # from $WORLD

die() { echo "demo: $*" >&2; exit 1; }

# Installs what is missing when run as root, else says how (scripts/deps.sh holds the list).
GO=$GO scripts/deps.sh "$([ $smoke = 1 ] && echo smoke || echo demo)"
[ -f gateway.toml ] || die "gateway.toml (the example configuration the demo runs with) is missing"

# A demo still running from this checkout owns .demo/run: do not pull it from under it.
if [ -f .demo/run/demo.pid ] && kill -0 "$(cat .demo/run/demo.pid)" 2>/dev/null; then
  die "another demo is running (pid $(cat .demo/run/demo.pid)); stop it first"
fi
rm -rf .demo/run
mkdir -p .demo/run/data .demo/run/certs .demo/bin
chmod 700 .demo .demo/run
run=$root/.demo/run
echo $$ > "$run/demo.pid"

# ---- cleanup: stop exactly what we started, newest first --------------------------------------------
pids=() # "name:pid", in start order
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i entry name pid
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    entry=${pids[$i]}; name=${entry%%:*}; pid=${entry#*:}
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "demo: $name (pid $pid) ignored SIGTERM for 5s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -f "$run/demo.pid"
  [ ${#pids[@]} -eq 0 ] || echo "demo: stopped ${#pids[@]} processes; logs are in $run/"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- free ports: the usual one if nobody listens there, else any --------------------------------
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
taken=" "
pick_port() {
  local p=$1
  while in_use "$p" || [[ $taken == *" $p "* ]]; do p=$(( 20000 + RANDOM % 40000 )); done
  taken+="$p "
  echo "$p"
}
C2S_PORT=$(pick_port 5222)
COMPONENT_PORT=$(pick_port 5347)
SIM_PORT=$(pick_port 8000)
METRICS_PORT=$(pick_port 9464)

wait_port() { # name pid port seconds
  local i
  for ((i=0; i<$4*10; i++)); do
    in_use "$3" && return 0
    kill -0 "$2" 2>/dev/null || { echo "demo: $1 exited; its log:" >&2; tail -n 20 "$run/$1.log" >&2; exit 1; }
    sleep 0.1
  done
  die "$1 is not listening on port $3 after $4s; see $run/$1.log"
}

# ---- build ----------------------------------------------------------------------------------------
echo "demo: building qqgateway, qqsim and xmppconfig"
"$GO" build -o .demo/bin/ ./cmd/qqgateway ./cmd/qqsim ./xmppcomp/xmpptest/cmd/xmppconfig

# ---- Prosody ----------------------------------------------------------------------------------------
if [ ! -f .demo/tls.crt ] || [ ! -f .demo/tls.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST,DNS:$TRANSPORT" \
    -keyout .demo/tls.key -out .demo/tls.crt >/dev/null 2>&1 || die "openssl could not make a certificate"
  chmod 600 .demo/tls.key
fi
cp .demo/tls.crt .demo/tls.key "$run/"
SECRET=$(openssl rand -hex 16)

# The configuration every test server and the end-to-end suite run with (xmppcomp/xmpptest's
# template), here with STARTTLS for desktop clients.
XMPPCONFIG_SECRET=$SECRET .demo/bin/xmppconfig -kind prosody -dir "$run" -domain "$HOST" \
  -component "$TRANSPORT" -c2s-port "$C2S_PORT" -component-port "$COMPONENT_PORT" \
  -cert "$run/tls.crt" -key "$run/tls.key" > "$run/prosody.cfg.lua" \
  || die "cannot write Prosody's configuration"
prosodyctl --config "$run/prosody.cfg.lua" register "$XMPP_USER" "$HOST" "$XMPP_PASSWORD" >/dev/null \
  || die "prosodyctl could not create $XMPP_USER@$HOST"
prosody --config "$run/prosody.cfg.lua" -F > "$run/prosody.out" 2>&1 &
pids+=("prosody:$!")
wait_port prosody $! "$C2S_PORT" 20
wait_port prosody "${pids[-1]#*:}" "$COMPONENT_PORT" 5

# ---- qqsim --------------------------------------------------------------------------------------------
.demo/bin/qqsim -listen "127.0.0.1:$SIM_PORT" -world "$WORLD" > "$run/qqsim.log" 2>&1 &
pids+=("qqsim:$!")
wait_port qqsim $! "$SIM_PORT" 20

# ---- the gateway: gateway.toml with this run's addresses -------------------------------------------
# Only the values that differ per run are replaced; everything else is the example as shipped.
awk -v comp="127.0.0.1:$COMPONENT_PORT" -v jid="$TRANSPORT" -v qq="http://127.0.0.1:$SIM_PORT/" \
    -v db="$run/gateway.db" -v metrics="127.0.0.1:$METRICS_PORT" '
  function set(key, val) { if ($0 ~ "^[ \t]*" key "[ \t]*=") { print key " = \"" val "\""; done[section "." key] = 1; return 1 } return 0 }
  /^[ \t]*\[/ { section = $0; gsub(/[][ \t]/, "", section) }
  section == "component" && (set("jid", jid) || set("server", comp)) { next }
  section == "qq" && set("server", qq) { next }
  section == "store" && set("path", db) { next }
  section == "metrics" && set("listen", metrics) { next }
  { print }
  END {
    split("component.jid component.server qq.server store.path metrics.listen", need, " ")
    for (i in need) if (!(need[i] in done)) { print "gateway.toml has no " need[i] " key" > "/dev/stderr"; bad = 1 }
    exit bad
  }' gateway.toml > "$run/gateway.toml" || die "cannot adapt gateway.toml for the demo"
QQGW_COMPONENT_SECRET=$SECRET .demo/bin/qqgateway -config "$run/gateway.toml" > "$run/qqgateway.log" 2>&1 &
pids+=("qqgateway:$!")
gw=$!
for i in $(seq 1 100); do
  grep -q 'External component successfully authenticated' "$run/prosody.log" 2>/dev/null && break
  kill -0 $gw 2>/dev/null || { echo "demo: the gateway exited; its log:" >&2; tail -n 30 "$run/qqgateway.log" >&2; exit 1; }
  [ "$i" -lt 100 ] || die "the gateway did not connect to Prosody within 10s; see $run/qqgateway.log and $run/prosody.log"
  sleep 0.1
done

if [ $smoke = 1 ]; then
  echo "demo: stack is up; a slixmpp client now registers, gets the roster and chats with the echo bot"
  "$PYTHON" e2e/journey.py --smoke --tls --server "127.0.0.1:$C2S_PORT" --jid "$XMPP_USER@$HOST" \
    --password "$XMPP_PASSWORD" --transport "$TRANSPORT" --sim "http://127.0.0.1:$SIM_PORT" \
    --world "$WORLD" --qq "$QQ_NUMBER" --qq-password "$QQ_PASSWORD" || {
      rc=$?
      echo "demo: smoke test failed; last lines of the gateway's log:" >&2
      tail -n 40 "$run/qqgateway.log" >&2
      exit $rc
    }
  # What an admin's Prometheus would scrape after that: the chat went both ways.
  metrics=$(curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics") || die "no /metrics on 127.0.0.1:$METRICS_PORT"
  for want in 'qqgateway_component_connected 1' 'qqgateway_users_registered 1' \
      'qqgateway_messages_relayed_total{direction="to_qq"}' 'qqgateway_messages_relayed_total{direction="to_xmpp"}' \
      'qqgateway_stanzas_received_total' 'qqgateway_stanzas_sent_total' 'qqgateway_delivery_barriers_total' \
      'qqgateway_store_commits_total' 'qqgateway_store_writes_total'; do
    line=$(awk -v w="$want" 'index($0, w) == 1 { print; exit }' <<<"$metrics")
    case "$line" in
      "" | *" 0") die "/metrics: no non-zero $want" ;;
    esac
    echo "PASS metrics: $line"
  done
  exit 0
fi

cat <<EOF

  The QQ gateway demo is running. Log in with any XMPP client (Gajim, Dino, Psi, Conversations…):

    JID ........ $XMPP_USER@$HOST
    password ... $XMPP_PASSWORD
    server ..... 127.0.0.1, port $C2S_PORT$( [ "$C2S_PORT" = 5222 ] || echo "  (not 5222: set host and port in the client's connection settings)")
    security ... STARTTLS with a self-signed certificate for "$HOST" (.demo/tls.crt): accept it when the
                 client asks; plaintext login is allowed too, on 127.0.0.1 only.

  Then, in the client:
    1. Open service discovery on "$HOST" and register with "$TRANSPORT" (or add the contact
       "$TRANSPORT" and choose Register / Execute command; clients with neither, such as
       Conversations or Dino: chat with "$TRANSPORT" and send "register"), and enter
         QQ number $QQ_NUMBER, password $QQ_PASSWORD   (any other password is rejected)
    2. Accept the subscription requests: your QQ buddies appear as 10002@$TRANSPORT … with nicknames.
    3. Write to 回声机器人 (10010@$TRANSPORT): the echo bot answers with your text.
       Add 10006@$TRANSPORT (asks for authorisation, then accepts) or 10007@$TRANSPORT (refuses).

  QQ side: qqsim at http://127.0.0.1:$SIM_PORT/ ; make a buddy talk to you with
    curl -d '{"from":10002,"to":$QQ_NUMBER,"text":"你好"}' http://127.0.0.1:$SIM_PORT/_sim/send

  Metrics (Prometheus): http://127.0.0.1:$METRICS_PORT/metrics   health: /healthz, /readyz
  Logs: $run/{prosody,qqsim,qqgateway}.log      Press Ctrl-C to stop everything.

EOF
# Run until Ctrl-C, or until one of the three dies.
set +e
wait -n
rc=$?
for entry in "${pids[@]}"; do
  kill -0 "${entry#*:}" 2>/dev/null || echo "demo: ${entry%%:*} exited (status $rc); see $run/${entry%%:*}.log" >&2
done
exit 1
