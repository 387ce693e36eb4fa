// Command xmppconfig prints the Prosody or ejabberd configuration that
// xmpptest runs its servers with (xmpptest.RenderConfig), for scripts that
// start such a server themselves: scripts/demo.sh runs make demo's Prosody
// with it, so the demo, the tests and the README's snippets share one text.
//
//	XMPPCONFIG_SECRET=s xmppconfig -dir DIR -component qq.localhost \
//		-c2s-port 5222 -component-port 5347 [-cert F -key F] > DIR/prosody.cfg.lua
//
// The component secret is read from the environment, not a flag, so that
// it does not show in the process list.
package main
