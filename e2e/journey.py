#!/usr/bin/python3
"""The user journey of the qq-xmpp gateway, lived by a real XMPP client (slixmpp).

A Jabber user logs in to a real server (Prosody or ejabberd), finds the QQ transport, registers a QQ
account through the XEP-0077 data form, gets the QQ buddies into the roster with their nicknames, sees
presence and chats both ways, adds and removes a buddy, reads a vCard and unregisters. The QQ side is
qqsim, watched and driven through its control API (/_sim/...). Expectations (nicknames, states,
profiles) come from the qqsim world file.

Every step prints "PASS name (secs)" or "FAIL name: why"; the run ends with "N passed, N failed" and
exits 1 if anything failed, 2 if it could not start at all. A step whose prerequisite failed is
reported as failed ("not run: ...") rather than skipped silently.

Run with Debian's python3-slixmpp: /usr/bin/python3 e2e/journey.py --help
"""

import argparse
import asyncio
import base64
import copy
import hashlib
import json
import ssl
import sys
import time
import tomllib
import traceback
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

try:
    import slixmpp
    from slixmpp.exceptions import IqError, IqTimeout
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
except ImportError:  # pragma: no cover - reported to the caller
    print("journey: slixmpp is missing; on Debian: apt-get install -y python3-slixmpp "
          "(and run this with /usr/bin/python3)", file=sys.stderr)
    sys.exit(2)

NS_CLIENT = "jabber:client"
NS_REGISTER = "jabber:iq:register"
NS_GATEWAY = "jabber:iq:gateway"
NS_DATA = "jabber:x:data"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_ROSTER = "jabber:iq:roster"
NS_VCARD = "vcard-temp"
NS_NICK = "http://jabber.org/protocol/nick"
NS_ROSTERX = "http://jabber.org/protocol/rosterx"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_RECEIPTS = "urn:xmpp:receipts"
NS_AVATAR_UPDATE = "vcard-temp:x:update"
NS_PING = "urn:xmpp:ping"
NS_VERSION = "jabber:iq:version"

# QQ states (qq-http-protocol.md).
ONLINE, OFFLINE, BUSY, INVISIBLE = 10, 20, 30, 40


class StepFailed(Exception):
    """A step's expectation was not met; the message says what was expected and what happened."""


def q(ns, tag):
    return "{%s}%s" % (ns, tag)


def bare(j):
    return (j or "").split("/", 1)[0]


def local(j):
    return bare(j).split("@", 1)[0] if "@" in (j or "") else ""


def show(el):
    """A stanza as XML, namespaces declared where they change, short enough for a failure line."""
    out = []

    def walk(e, parent_ns):
        ns, tag = (e.tag[1:].split("}", 1) if e.tag.startswith("{") else ("", e.tag))
        attrs = "".join(' %s="%s"' % (k.split("}", 1)[-1], v) for k, v in e.attrib.items())
        if ns != parent_ns:
            attrs = ' xmlns="%s"' % ns + attrs
        out.append("<%s%s" % (tag, attrs))
        if len(e) == 0 and not e.text:
            out.append("/>")
        else:
            out.append(">" + (e.text or ""))
            for child in e:
                walk(child, ns)
                out.append(child.tail or "")
            out.append("</%s>" % tag)
    walk(el, NS_CLIENT)
    s = "".join(out)
    return s if len(s) <= 500 else s[:500] + "…"


def error_condition(el):
    """The defined condition of a stanza's <error/>, or None."""
    err = el.find(q(NS_CLIENT, "error"))
    if err is None:
        return None
    for child in err:
        if child.tag.startswith("{%s}" % NS_STANZAS) and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return "(no condition)"


def error_text(el):
    err = el.find(q(NS_CLIENT, "error"))
    t = err.find(q(NS_STANZAS, "text")) if err is not None else None
    return t.text if t is not None and t.text else ""


class Seen:
    """Every message and presence the client receives, kept in order until a step claims it.

    `log` keeps everything ever received, so a step can also assert that something never arrived.
    """

    def __init__(self):
        self.buffer = []
        self.log = []
        self.cond = asyncio.Condition()

    async def add(self, el):
        async with self.cond:
            self.buffer.append(el)
            self.log.append((time.monotonic(), el))
            self.cond.notify_all()

    async def expect(self, what, pred, timeout):
        """Wait for the first buffered stanza that pred accepts, remove it and return it."""
        deadline = time.monotonic() + timeout
        async with self.cond:
            while True:
                for i, el in enumerate(self.buffer):
                    if pred(el):
                        del self.buffer[i]
                        return el
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StepFailed("no %s within %.0fs; %s" % (what, timeout, self.recent()))
                try:
                    await asyncio.wait_for(self.cond.wait(), left)
                except asyncio.TimeoutError:
                    pass

    def recent(self, n=6):
        if not self.buffer:
            return "nothing unclaimed was received"
        return "unclaimed stanzas (last %d): %s" % (min(n, len(self.buffer)),
                                                    " | ".join(show(e) for e in self.buffer[-n:]))

    def drop(self, pred):
        self.buffer = [e for e in self.buffer if not pred(e)]

    def since(self, t0, pred):
        return [el for (t, el) in self.log if t >= t0 and pred(el)]


def is_presence(el, frm=None, ptype=None):
    if el.tag != q(NS_CLIENT, "presence"):
        return False
    if frm is not None and bare(el.get("from")) != frm:
        return False
    if ptype is not None and (el.get("type") or "available") != ptype:
        return False
    return True


def presence_show(el):
    s = el.find(q(NS_CLIENT, "show"))
    return s.text if s is not None and s.text else ""


def is_message(el, frm=None, mtype=None):
    if el.tag != q(NS_CLIENT, "message"):
        return False
    if frm is not None and bare(el.get("from")) != frm:
        return False
    if mtype is not None and (el.get("type") or "normal") != mtype:
        return False
    return True


def body(el):
    b = el.find(q(NS_CLIENT, "body"))
    return b.text if b is not None and b.text is not None else None


class Sim:
    """qqsim's control API."""

    def __init__(self, base):
        self.base = base.rstrip("/")

    def _call(self, method, path, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise StepFailed("qqsim %s %s: %s %s" % (method, path, e.code, e.read().decode(errors="replace")))
        except OSError as e:
            raise StepFailed("qqsim %s %s: %s" % (method, path, e))

    async def get(self, path):
        return await asyncio.to_thread(self._call, "GET", path)

    async def post(self, path, payload):
        return await asyncio.to_thread(self._call, "POST", path, payload)

    async def session(self, uin):
        return await self.get("/_sim/session/%d" % uin)

    async def inbox(self, uin):
        return await self.get("/_sim/inbox/%d" % uin) or []


async def eventually(what, check, timeout, interval=0.2):
    """Call check() until it returns a true value; fail with its last answer after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        ok, last = await check()
        if ok:
            return last
        if time.monotonic() >= deadline:
            raise StepFailed("%s not seen within %.0fs; last: %s" % (what, timeout, last))
        await asyncio.sleep(interval)


class World:
    """The parts of the qqsim world file the journey checks against."""

    def __init__(self, path, user):
        with open(path, "rb") as f:
            accounts = tomllib.load(f).get("account", [])
        self.by_uin = {a["uin"]: a for a in accounts}
        if user not in self.by_uin:
            raise SystemExit("journey: QQ number %d is not in %s" % (user, path))
        self.user = self.by_uin[user]
        self.buddies = [self.by_uin[b] for b in self.user.get("buddies", [])]

    def state(self, a):
        return a.get("state", OFFLINE) or OFFLINE

    def online(self):
        return [b for b in self.buddies if self.state(b) in (ONLINE, BUSY)]

    def hidden(self):
        return [b for b in self.buddies if self.state(b) in (OFFLINE, INVISIBLE)]

    def pick(self, pred, role):
        for a in self.by_uin.values():
            if pred(a):
                return a
        raise StepFailed("the world file has no account for the role: %s" % role)


class Journey:
    def __init__(self, args, world):
        self.a = args
        self.w = world
        self.sim = Sim(args.sim)
        self.t = args.transport
        self.uin = args.qq
        self.seen = None
        self.c = None
        self.results = {}
        self.passed = 0
        self.failed = 0
        self.accepting = True  # like a user clicking "accept" on subscription requests from the transport
        self.nicks = {}  # bare JID -> nick offered in a subscription request
        self.behaviour_errors = []

    def jid(self, uin):
        return "%d@%s" % (uin, self.t)

    # ---- the client -------------------------------------------------------------------------------

    async def connect(self):
        c = slixmpp.ClientXMPP(self.a.jid, self.a.password)
        c.register_plugin("xep_0030")
        c.roster.auto_authorize = None  # the journey answers subscription requests itself
        c.roster.auto_subscribe = False
        if self.a.tls:
            # The demo's certificate is self-signed; a desktop client asks the user once.
            c.ssl_context.check_hostname = False
            c.ssl_context.verify_mode = ssl.CERT_NONE
        self.c = c
        self.seen = Seen()
        loop = asyncio.get_running_loop()
        started = loop.create_future()

        def settle(v):
            if not started.done():
                started.set_result(v)

        c.add_event_handler("session_start", lambda _: settle(None))
        c.add_event_handler("failed_auth", lambda _: settle("authentication failed for %s" % self.a.jid))
        c.add_event_handler("connection_failed", lambda e: settle("cannot connect: %s" % e))
        c.add_event_handler("disconnected", lambda e: settle("disconnected: %s" % e))
        for tag in ("message", "presence"):
            c.register_handler(Callback("journey " + tag, MatchXPath("{%s}%s" % (NS_CLIENT, tag)),
                                        self.on_stanza))
        host, port = self.a.server.rsplit(":", 1)
        c.connect(address=(host, int(port)), force_starttls=self.a.tls, disable_starttls=not self.a.tls)
        try:
            err = await asyncio.wait_for(started, 20)
        except asyncio.TimeoutError:
            err = "no session within 20s"
        if err:
            raise StepFailed(err)

    def on_stanza(self, st):
        el = copy.deepcopy(st.xml)
        if self.a.verbose:
            print("  <<", show(el), flush=True)
        asyncio.ensure_future(self.seen.add(el))
        asyncio.ensure_future(self.behave(el))

    async def behave(self, el):
        """What a user of a desktop client does by hand: accept the transport's contacts."""
        try:
            frm = bare(el.get("from"))
            if not (frm == self.t or frm.endswith("@" + self.t)):
                return
            if is_presence(el, ptype="subscribe"):
                if not self.accepting:
                    self.behaviour_errors.append("subscription request after unregistering: " + show(el))
                    return
                n = el.find(q(NS_NICK, "nick"))
                if n is not None and n.text:
                    self.nicks[frm] = n.text
                    await self.roster_set(frm, name=n.text)
                self.c.send_presence(pto=frm, ptype="subscribed")
                item = (await self.roster()).get(frm)
                if item is None or item["subscription"] in ("none", "from"):
                    if not (item and item["ask"]):
                        self.c.send_presence(pto=frm, ptype="subscribe")
            elif is_message(el):
                x = el.find(q(NS_ROSTERX, "x"))
                if x is not None and self.accepting:  # XEP-0144: add the suggested items
                    for it in x.findall(q(NS_ROSTERX, "item")):
                        j = bare(it.get("jid"))
                        if it.get("action", "add") == "add":
                            await self.roster_set(j, name=it.get("name"))
                            self.c.send_presence(pto=j, ptype="subscribe")
        except Exception as e:  # the behaviour must never kill the journey
            self.behaviour_errors.append("%s: %r" % (show(el), e))

    async def iq(self, itype, to, payload, timeout=10):
        iq = self.c.Iq()
        iq["type"] = itype
        if to:
            iq["to"] = to
        iq.xml.append(payload)
        resp = await iq.send(timeout=timeout)
        return resp.xml

    async def roster(self):
        res = await self.iq("get", None, ET.Element(q(NS_ROSTER, "query")))
        items = {}
        for it in res.iter(q(NS_ROSTER, "item")):
            items[bare(it.get("jid"))] = {"name": it.get("name"), "subscription": it.get("subscription", "none"),
                                          "ask": it.get("ask")}
        return items

    async def roster_set(self, j, name=None, remove=False):
        qe = ET.Element(q(NS_ROSTER, "query"))
        item = ET.SubElement(qe, q(NS_ROSTER, "item"), {"jid": j})
        if remove:
            item.set("subscription", "remove")
        elif name:
            item.set("name", name)
        await self.iq("set", None, qe)

    def say(self, to, text, receipt_id=None):
        m = self.c.make_message(mto=to, mbody=text, mtype="chat")
        if receipt_id:
            m["id"] = receipt_id
            m.xml.append(ET.Element(q(NS_RECEIPTS, "request")))
        m.send()

    # ---- running ----------------------------------------------------------------------------------

    async def run(self, steps):
        for name, fn, needs, timeout in steps:
            t0 = time.monotonic()
            missing = [n for n in needs if not self.results.get(n)]
            if missing:
                self.report(name, False, "not run: needs %s, which failed" % ", ".join(repr(m) for m in missing), t0)
                continue
            try:
                await asyncio.wait_for(fn(), timeout)
                self.report(name, True, "", t0)
            except StepFailed as e:
                self.report(name, False, str(e), t0)
            except IqError as e:
                self.report(name, False, "error reply: %s" % show(e.iq.xml), t0)
            except IqTimeout:
                self.report(name, False, "no reply to an iq within its timeout", t0)
            except asyncio.TimeoutError:
                self.report(name, False, "step took longer than %ds; %s" % (timeout, self.seen.recent() if self.seen else ""), t0)
            except Exception as e:
                tb = traceback.format_exc().strip().splitlines()
                self.report(name, False, "%r at %s" % (e, tb[-3].strip() if len(tb) > 2 else "?"), t0)
        if self.c is not None:
            self.c.disconnect()
            try:
                await asyncio.wait_for(self.c.disconnected, 5)
            except Exception:
                pass
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return self.failed == 0

    def report(self, name, ok, why, t0):
        self.results[name] = ok
        if ok:
            self.passed += 1
            print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
        else:
            self.failed += 1
            print("FAIL %s: %s" % (name, why), flush=True)

    # ---- the steps --------------------------------------------------------------------------------

    async def step_login(self):
        await self.connect()
        self.c.send_presence()
        await self.c.get_roster()

    async def step_discover(self):
        # The gateway may still be connecting: ask until the transport answers.
        async def info():
            try:
                return True, await self.iq("get", self.t, ET.Element(q(NS_DISCO_INFO, "query")), timeout=5)
            except (IqError, IqTimeout) as e:
                return False, show(e.iq.xml) if isinstance(e, IqError) else "iq timeout"
        res = await eventually("disco#info answer from %s" % self.t, info, 15, 0.5)
        ids = [(i.get("category"), i.get("type")) for i in res.iter(q(NS_DISCO_INFO, "identity"))]
        feats = {f.get("var") for f in res.iter(q(NS_DISCO_INFO, "feature"))}
        if ("gateway", "qq") not in ids:
            raise StepFailed("no identity gateway/qq in %s" % show(res))
        for f in (NS_REGISTER, NS_GATEWAY):
            if f not in feats:
                raise StepFailed("feature %s missing from %s" % (f, show(res)))
        items = await self.iq("get", self.c.boundjid.domain, ET.Element(q(NS_DISCO_ITEMS, "query")))
        if self.t not in [i.get("jid") for i in items.iter(q(NS_DISCO_ITEMS, "item"))]:
            raise StepFailed("the server's disco#items does not list %s: %s" % (self.t, show(items)))

    async def step_ping_version(self):
        await self.iq("get", self.t, ET.Element(q(NS_PING, "ping")))
        res = await self.iq("get", self.t, ET.Element(q(NS_VERSION, "query")))
        name = res.find("%s/%s" % (q(NS_VERSION, "query"), q(NS_VERSION, "name")))
        if name is None or not name.text:
            raise StepFailed("no <name/> in the version answer: %s" % show(res))

    async def get_form(self):
        res = await self.iq("get", self.t, ET.Element(q(NS_REGISTER, "query")))
        query = res.find(q(NS_REGISTER, "query"))
        if query is None:
            raise StepFailed("no jabber:iq:register query in %s" % show(res))
        return query, query.find(q(NS_DATA, "x"))

    async def step_form(self):
        query, x = await self.get_form()
        if x is None or x.get("type") != "form":
            raise StepFailed("no data form (jabber:x:data type=form) in %s" % show(query))
        if query.find(q(NS_REGISTER, "registered")) is not None:
            raise StepFailed("says <registered/> before any registration: %s" % show(query))
        self.form = x
        types = [f.get("type") for f in x.findall(q(NS_DATA, "field"))]
        if "text-private" not in types:
            raise StepFailed("no text-private (password) field: %s" % show(x))

    def filled(self, uin, password):
        """The registration form filled in as a user would: the number, the password, defaults kept."""
        sub = ET.Element(q(NS_DATA, "x"), {"type": "submit"})
        fields = self.form.findall(q(NS_DATA, "field"))
        texts = [f for f in fields if f.get("type") in (None, "text-single") and f.get("var")]
        number = next((f for f in texts if f.get("var") in ("username", "uin", "qq", "number")), texts[0] if texts else None)
        if number is None:
            raise StepFailed("no text field for the QQ number: %s" % show(self.form))
        for f in fields:
            var = f.get("var")
            if not var or f.get("type") == "fixed":
                continue
            if f is number:
                vals = [str(uin)]
            elif f.get("type") == "text-private":
                vals = [password]
            else:
                vals = [v.text or "" for v in f.findall(q(NS_DATA, "value"))]
            out = ET.SubElement(sub, q(NS_DATA, "field"), {"var": var})
            for v in vals:
                ET.SubElement(out, q(NS_DATA, "value")).text = v
        query = ET.Element(q(NS_REGISTER, "query"))
        query.append(sub)
        return query

    async def step_wrong_password(self):
        try:
            res = await self.iq("set", self.t, self.filled(self.uin, self.a.qq_password + "-wrong"), timeout=15)
        except IqError as e:
            cond = error_condition(e.iq.xml)
            if cond != "not-acceptable":
                raise StepFailed("want error not-acceptable, got %s: %s" % (cond, show(e.iq.xml)))
            if "密码错误" not in error_text(e.iq.xml):
                # qqsim answers a wrong password as the seed shows (RA=密码错误); the user should read why.
                raise StepFailed("the error's <text/> does not pass on QQ's reason 密码错误: %s" % show(e.iq.xml))
        else:
            raise StepFailed("a wrong password was accepted: %s" % show(res))
        query, _ = await self.get_form()
        if query.find(q(NS_REGISTER, "registered")) is not None:
            raise StepFailed("registered anyway after the rejection: %s" % show(query))

    async def step_register(self):
        await self.iq("set", self.t, self.filled(self.uin, self.a.qq_password), timeout=15)
        query, _ = await self.get_form()
        if query.find(q(NS_REGISTER, "registered")) is None:
            raise StepFailed("the form does not say <registered/> afterwards: %s" % show(query))

    async def step_transport_contact(self):
        # XEP-0100 4.1.1: the transport asks to subscribe; the user accepts (behave) and subscribes back.
        await self.seen.expect("subscription request from %s" % self.t,
                               lambda e: is_presence(e, self.t, "subscribe"), 10)

        async def both():
            item = (await self.roster()).get(self.t)
            return bool(item and item["subscription"] == "both"), item
        await eventually("roster item %s with subscription both" % self.t, both, 10)
        await self.seen.expect("available presence from %s" % self.t,
                               lambda e: is_presence(e, self.t, "available"), 10)

    async def step_roster(self):
        want = {self.jid(b["uin"]): b["nick"] for b in self.w.buddies}

        async def check():
            items = await self.roster()
            bad = []
            for j, nick in want.items():
                it = items.get(j)
                if it is None:
                    bad.append("%s missing" % j)
                elif it["name"] != nick:
                    bad.append("%s named %r, want %r" % (j, it["name"], nick))
                elif it["subscription"] not in ("to", "both"):
                    bad.append("%s subscription %s" % (j, it["subscription"]))
            own = self.jid(self.uin)
            if own in items:
                bad.append("the user's own number %s is in the roster" % own)
            return not bad, "; ".join(bad)
        await eventually("every buddy in the roster with its nickname", check, 15, 0.5)

    async def step_buddy_presence(self):
        t0 = time.monotonic()
        for b in self.w.online():
            j = self.jid(b["uin"])
            want = "away" if self.w.state(b) == BUSY else ""
            el = await self.seen.expect("available presence from %s" % j, lambda e, j=j: is_presence(e, j, "available"), 10)
            if presence_show(el) != want:
                raise StepFailed("%s shows %r, want %r: %s" % (j, presence_show(el), want, show(el)))
        await asyncio.sleep(1)  # give stray presences of hidden buddies time to show up
        for b in self.w.hidden() + [self.w.user]:
            j = self.jid(b["uin"])
            wrong = [e for (_, e) in self.seen.log if is_presence(e, j, "available")]
            if wrong:
                raise StepFailed("%s (state %s) must look offline, got %s" % (j, self.w.state(b), show(wrong[0])))

    async def step_my_presence(self):
        async def state_is(want):
            async def check():
                s = await self.sim.session(self.uin)
                return s.get("logged_in") and s.get("state") == want, s
            return await eventually("QQ state %d of %d" % (want, self.uin), check, 10)
        await state_is(ONLINE)
        self.c.send_presence(pshow="away", pstatus="lunch")
        await state_is(BUSY)
        self.c.send_presence(pshow="dnd")
        await state_is(BUSY)
        self.c.send_presence()
        await state_is(ONLINE)

    async def step_their_presence(self):
        b = self.buddy(lambda a: self.w.state(a) == ONLINE and not a.get("bot"), "an online buddy", last=True)
        j = self.jid(b["uin"])
        self.seen.drop(lambda e: is_presence(e, j))
        for st, ptype, want in ((BUSY, "available", "away"), (OFFLINE, "unavailable", None), (ONLINE, "available", "")):
            await self.sim.post("/_sim/state", {"uin": b["uin"], "state": st})
            await self.seen.expect("%s presence%s from %s after QQ state %d" % (
                ptype, "" if want is None else " with show=%r" % want, j, st),
                lambda e: is_presence(e, j, ptype) and (want is None or presence_show(e) == want), 10)

    def buddy(self, pred, role, last=False):
        for b in (reversed(self.w.buddies) if last else self.w.buddies):
            if pred(b):
                return b
        raise StepFailed("the world file has no buddy for the role: %s" % role)

    async def step_message_to_qq(self):
        b = self.buddy(lambda a: self.w.state(a) == OFFLINE and not a.get("bot"), "an offline buddy")
        text = "你好，%s！今天吃了吗？ 100%% & <ok> &UN=1,2 MG=x\n第二行" % b["nick"]
        rid = "receipt-%d" % int(time.time() * 1000)
        self.say(self.jid(b["uin"]), text, receipt_id=rid)

        async def check():
            got = [i for i in await self.sim.inbox(b["uin"]) if i.get("from") == self.uin]
            return any(i.get("text") == text for i in got), [i.get("text") for i in got]
        await eventually("the message in %d's QQ inbox" % b["uin"], check, 10)
        j = self.jid(b["uin"])

        def receipt(e):
            r = e.find(q(NS_RECEIPTS, "received"))
            return is_message(e, j) and r is not None and r.get("id") == rid
        await self.seen.expect("receipt (XEP-0184) for message %s from %s" % (rid, j), receipt, 10)
        errs = self.seen.since(0, lambda e: is_message(e, j, "error"))
        if errs:
            raise StepFailed("delivered, but an error came back too: %s" % show(errs[0]))

    async def step_message_from_qq(self):
        b = self.buddy(lambda a: self.w.state(a) == ONLINE and not a.get("bot"), "an online buddy")
        j = self.jid(b["uin"])
        text = "我在这儿, 你呢? 50% & <b>粗体</b> &UN=3 😀"
        await self.sim.post("/_sim/send", {"from": b["uin"], "to": self.uin, "text": text})
        el = await self.seen.expect("message from %s" % j, lambda e: is_message(e, j) and body(e) is not None, 10)
        if body(el) != text:
            raise StepFailed("body %r, want %r: %s" % (body(el), text, show(el)))
        if (el.get("type") or "normal") != "chat":
            raise StepFailed("type %r, want chat: %s" % (el.get("type"), show(el)))
        if el.find("{urn:xmpp:delay}delay") is not None:
            raise StepFailed("a message delivered at once carries an XEP-0203 delay (clients show it as old): %s" % show(el))

    async def step_offline_and_back(self):
        # The last resource going away logs the session out of QQ; what buddies say meanwhile waits on
        # the QQ server and arrives when the user is back.
        b = self.buddy(lambda a: self.w.state(a) == ONLINE and not a.get("bot"), "an online buddy")
        j = self.jid(b["uin"])

        async def logged_in(want):
            async def check():
                s = await self.sim.session(self.uin)
                return bool(s.get("logged_in")) == want, s
            await eventually("QQ session of %d %s" % (self.uin, "logged in" if want else "logged out"), check, 10)
        self.c.send_presence(ptype="unavailable")
        await logged_in(False)
        text = "你下线的时候我说了这句话。"
        await self.sim.post("/_sim/send", {"from": b["uin"], "to": self.uin, "text": text})
        self.seen.drop(lambda e: is_presence(e, j))
        self.c.send_presence()
        await logged_in(True)
        el = await self.seen.expect("the message %s sent while the user was offline" % j,
                                    lambda e: is_message(e, j) and body(e) is not None, 10)
        if body(el) != text:
            raise StepFailed("body %r, want %r: %s" % (body(el), text, show(el)))
        await self.seen.expect("available presence from %s after coming back" % j,
                               lambda e: is_presence(e, j, "available"), 10)

    async def step_echo(self):
        b = self.buddy(lambda a: a.get("bot") == "echo", "the echo bot")
        j = self.jid(b["uin"])
        text = "回声测试 %d：你好！" % int(time.time())
        self.say(j, text)
        el = await self.seen.expect("answer from the echo bot %s" % j, lambda e: is_message(e, j) and body(e) is not None, 10)
        if body(el) != text:
            raise StepFailed("answer %r, want %r: %s" % (body(el), text, show(el)))

    async def buddies_on_qq(self):
        return (await self.sim.session(self.uin)).get("buddies") or []

    async def step_add_buddy(self):
        a = self.w.pick(lambda x: x.get("auth", 0) == 0 and x["uin"] not in self.w.user.get("buddies", [])
                        and x["uin"] != self.uin, "a stranger anyone may add")
        self.added = a
        j = self.jid(a["uin"])
        await self.roster_set(j, name=a["nick"])
        self.c.send_presence(pto=j, ptype="subscribe")
        await self.seen.expect("subscribed from %s" % j, lambda e: is_presence(e, j, "subscribed") or is_presence(e, j, "unsubscribed"), 10)

        async def check():
            bl = await self.buddies_on_qq()
            return a["uin"] in bl, bl
        await eventually("%d in %d's QQ buddy list" % (a["uin"], self.uin), check, 10)

        async def sub():
            it = (await self.roster()).get(j)
            return bool(it and it["subscription"] in ("to", "both")), it
        await eventually("roster item %s with subscription to" % j, sub, 10)

    async def step_add_with_auth(self):
        a = self.w.pick(lambda x: x.get("auth", 0) == 1 and x.get("on_add") == "approve"
                        and x["uin"] not in self.w.user.get("buddies", []), "a stranger who authorises")
        j = self.jid(a["uin"])
        self.c.send_presence(pto=j, ptype="subscribe")
        el = await self.seen.expect("answer from %s" % j, lambda e: is_presence(e, j, "subscribed") or is_presence(e, j, "unsubscribed"), 15)
        if el.get("type") != "subscribed":
            raise StepFailed("want subscribed once %d approved, got %s" % (a["uin"], show(el)))

    async def step_add_refused(self):
        a = self.w.pick(lambda x: x.get("auth", 0) == 3 and x["uin"] not in self.w.user.get("buddies", []),
                        "a stranger who accepts nobody")
        j = self.jid(a["uin"])
        self.c.send_presence(pto=j, ptype="subscribe")
        el = await self.seen.expect("answer from %s" % j, lambda e: is_presence(e, j, "subscribed") or is_presence(e, j, "unsubscribed") or is_presence(e, j, "error"), 10)
        if el.get("type") != "unsubscribed":
            raise StepFailed("want unsubscribed from someone who accepts nobody, got %s" % show(el))
        if a["uin"] in await self.buddies_on_qq():
            raise StepFailed("%d is in the QQ buddy list anyway" % a["uin"])

    async def step_remove_buddy(self):
        a = self.added
        j = self.jid(a["uin"])
        t0 = time.monotonic()
        await self.roster_set(j, remove=True)

        async def check():
            bl = await self.buddies_on_qq()
            return a["uin"] not in bl, bl
        try:
            await eventually("%d gone from %d's QQ buddy list" % (a["uin"], self.uin), check, 10)
        finally:
            # Removing one contact is no reason to go offline: the server sends the removed contact
            # an unavailable presence (RFC 6121 2.5.2), directed at that contact only.
            s = await self.sim.session(self.uin)
            gone = self.seen.since(t0, lambda e: is_presence(e, ptype="unavailable") and bare(e.get("from")) != j
                                   and (bare(e.get("from")).endswith("@" + self.t) or bare(e.get("from")) == self.t))
            if not s.get("logged_in") or gone:
                raise StepFailed("removing %s logged %d out of QQ (session %s) and made %d other contacts "
                                 "unavailable, e.g. %s" % (j, self.uin, s, len(gone), show(gone[0]) if gone else "-"))
        if j in await self.roster():
            raise StepFailed("%s still in the roster" % j)

    async def step_vcard(self):
        b = self.buddy(lambda a: a.get("profile"), "a buddy with a profile")
        p = b["profile"]
        res = await self.iq("get", self.jid(b["uin"]), ET.Element(q(NS_VCARD, "vCard")), timeout=15)
        v = res.find(q(NS_VCARD, "vCard"))
        if v is None:
            raise StepFailed("no vCard in %s" % show(res))

        def text(path):
            e = v.find(path)
            return e.text if e is not None else None
        checks = [("NICKNAME", text(q(NS_VCARD, "NICKNAME")), b["nick"])]
        if p.get("RN"):
            checks.append(("FN", text(q(NS_VCARD, "FN")), p["RN"]))
        if p.get("EM"):
            checks.append(("EMAIL/USERID", text("%s/%s" % (q(NS_VCARD, "EMAIL"), q(NS_VCARD, "USERID"))), p["EM"]))
        if p.get("PR"):
            checks.append(("DESC", text(q(NS_VCARD, "DESC")), p["PR"]))
        # XML turns a raw CR LF into LF (XML 1.0 §2.11) wherever a hop writes CR unescaped; a reader
        # sees the same line break either way.
        def norm(v):
            return v.replace("\r\n", "\n") if isinstance(v, str) else v
        bad = ["%s=%r, want %r" % (k, got, want) for k, got, want in checks if norm(got) != norm(want)]
        if bad:
            raise StepFailed("; ".join(bad) + ": " + show(v))
        # XEP-0153: the PHOTO is a picture whose SHA-1 is the hash the buddy's presence announced.
        binval = text("%s/%s" % (q(NS_VCARD, "PHOTO"), q(NS_VCARD, "BINVAL")))
        if not binval:
            raise StepFailed("no PHOTO/BINVAL: %s" % show(v))
        photo = base64.b64decode("".join(binval.split()))
        if not photo.startswith(b"\x89PNG"):
            raise StepFailed("PHOTO is not a PNG: %r" % photo[:8])
        j = self.jid(b["uin"])
        hashes = [h.text for (_, e) in self.seen.log if is_presence(e, j, "available")
                  for h in e.iter(q(NS_AVATAR_UPDATE, "photo")) if h.text]
        if hashes and hashes[-1] != hashlib.sha1(photo).hexdigest():
            raise StepFailed("presence announced photo %s, the vCard's PHOTO has SHA-1 %s"
                             % (hashes[-1], hashlib.sha1(photo).hexdigest()))

    async def step_gateway_prompt(self):
        res = await self.iq("get", self.t, ET.Element(q(NS_GATEWAY, "query")))
        if res.find("%s/%s" % (q(NS_GATEWAY, "query"), q(NS_GATEWAY, "prompt"))) is None:
            raise StepFailed("no <prompt/> in %s" % show(res))
        qe = ET.Element(q(NS_GATEWAY, "query"))
        ET.SubElement(qe, q(NS_GATEWAY, "prompt")).text = "20020"
        res = await self.iq("set", self.t, qe)
        got = res.find("%s/%s" % (q(NS_GATEWAY, "query"), q(NS_GATEWAY, "jid")))
        if got is None or got.text != self.jid(20020):
            raise StepFailed("want <jid>%s</jid>, got %s" % (self.jid(20020), show(res)))

    async def step_unregister(self):
        self.accepting = False
        t0 = time.monotonic()
        qe = ET.Element(q(NS_REGISTER, "query"))
        ET.SubElement(qe, q(NS_REGISTER, "remove"))
        await self.iq("set", self.t, qe, timeout=15)

        async def logged_out():
            s = await self.sim.session(self.uin)
            return not s.get("logged_in"), s
        await eventually("QQ session of %d logged out" % self.uin, logged_out, 10)
        await self.seen.expect("unsubscribe or unsubscribed from %s" % self.t,
                               lambda e: is_presence(e, self.t, "unsubscribed") or is_presence(e, self.t, "unsubscribe"), 10)
        query, _ = await self.get_form()
        if query.find(q(NS_REGISTER, "registered")) is not None:
            raise StepFailed("still <registered/>: %s" % show(query))

    async def step_bounce(self):
        b = self.buddy(lambda a: a.get("bot") == "echo", "the echo bot")
        j = self.jid(b["uin"])
        self.say(j, "还在吗？")
        el = await self.seen.expect("message error from %s" % j,
                                    lambda e: is_message(e, j) and (e.get("type") == "error" or body(e) is not None), 10)
        if el.get("type") != "error":
            raise StepFailed("want an error stanza (not registered), got %s" % show(el))
        if self.behaviour_errors:
            raise StepFailed("; ".join(self.behaviour_errors))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True, help="host:port of the XMPP server's c2s listener")
    p.add_argument("--jid", required=True, help="the Jabber user, e.g. traveller@localhost")
    p.add_argument("--password", required=True)
    p.add_argument("--transport", required=True, help="the gateway's component domain, e.g. qq.localhost")
    p.add_argument("--sim", required=True, help="qqsim's base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--world", required=True, help="the world file qqsim runs with")
    p.add_argument("--qq", type=int, required=True, help="the QQ number the user registers")
    p.add_argument("--qq-password", required=True)
    p.add_argument("--tls", action="store_true", help="log in over STARTTLS (certificate not verified)")
    p.add_argument("--smoke", action="store_true", help="only log in, register, get the roster, chat with the echo bot")
    p.add_argument("--verbose", "-v", action="store_true", help="print every stanza received")
    a = p.parse_args()
    world = World(a.world, a.qq)
    j = Journey(a, world)
    # name, step, the steps it needs, its time limit in seconds
    full = [
        ("log in", j.step_login, [], 30),
        ("discover the transport", j.step_discover, ["log in"], 30),
        ("ping and version", j.step_ping_version, ["discover the transport"], 20),
        ("registration form", j.step_form, ["discover the transport"], 20),
        ("wrong password rejected", j.step_wrong_password, ["registration form"], 30),
        ("register", j.step_register, ["registration form"], 30),
        ("transport in roster", j.step_transport_contact, ["register"], 40),
        ("roster filled with nicknames", j.step_roster, ["register"], 30),
        ("buddies' presence", j.step_buddy_presence, ["register"], 30),
        ("my presence reaches QQ", j.step_my_presence, ["register"], 50),
        ("buddy presence changes reach me", j.step_their_presence, ["register"], 40),
        ("message to QQ", j.step_message_to_qq, ["register"], 20),
        ("message from QQ", j.step_message_from_qq, ["register"], 20),
        ("chat with the echo bot", j.step_echo, ["register"], 20),
        ("read a vCard", j.step_vcard, ["register"], 20),
        ("number to JID (XEP-0100 prompt)", j.step_gateway_prompt, ["discover the transport"], 20),
        ("add a buddy", j.step_add_buddy, ["register"], 40),
        ("add a buddy who must authorise", j.step_add_with_auth, ["register"], 20),
        ("adding refused", j.step_add_refused, ["register"], 20),
        ("remove a buddy", j.step_remove_buddy, ["add a buddy"], 20),
        ("offline and back", j.step_offline_and_back, ["register"], 40),
        ("unregister", j.step_unregister, ["register"], 40),
        ("message after unregistering bounces", j.step_bounce, ["unregister"], 20),
    ]
    smoke = {"log in", "discover the transport", "registration form", "register", "transport in roster",
             "roster filled with nicknames", "chat with the echo bot"}
    steps = [s for s in full if not a.smoke or s[0] in smoke]
    ok = asyncio.run(j.run(steps))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
