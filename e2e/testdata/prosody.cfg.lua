-- Prosody 0.12 configuration used by the end-to-end suite (e2e/e2e_test.go) and by `make demo`
-- (scripts/demo.sh). Placeholders (capitals between at-signs) are filled in by both; everything runs on 127.0.0.1
-- from one scratch directory, so the real /etc/prosody and /var/lib/prosody are never touched.
-- The lines between "-- snippet:" markers are quoted in README.md; e2e/readme_test.go keeps them equal.

run_as_root = true -- the suite and the demo may run as root in CI containers
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
log = { { levels = { min = "@LOG_LEVEL@" }, to = "file", filename = "@DIR@/prosody.log" } }

interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
modules_disabled = { "s2s" } -- a loopback-only server federates with nobody

modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "ping"; "vcard_legacy"; "posix";
}

authentication = "internal_hashed"

-- Loopback only: clients may log in without TLS (slixmpp in the suite), and STARTTLS is offered with a
-- self-signed certificate for desktop clients that insist on it (the demo).
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
certificates = "@DIR@" -- holds tls.crt and tls.key
ssl = { certificate = "@DIR@/tls.crt"; key = "@DIR@/tls.key" }

-- snippet:prosody-global begin
component_ports = { @COMPONENT_PORT@ }
component_interfaces = { "127.0.0.1" }
-- snippet:prosody-global end

VirtualHost "@HOST@"

-- snippet:prosody-component begin
Component "@COMPONENT_DOMAIN@"
	component_secret = "@COMPONENT_SECRET@"
-- snippet:prosody-component end
