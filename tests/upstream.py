"""A scriptable test upstream SMTP server (Gmail-like) and its controller.

The server side runs in its own process ("/usr/bin/python3 upstream.py
--config FILE") on aiosmtpd (Debian python3-aiosmtpd 1.4.3), so a test
can stop, kill and restart it on the same port.  The test side is the
Upstream class (standard library only):

    up = Upstream(workdir, tls="starttls"|"implicit"|"none",
                  cert=None, key=None,        # default: certs.make_pki
                  users={"user@test": "secret"}, auth_required=True,
                  offer_starttls=True, require_starttls=None,
                  size=35882577, auth_mechs=("PLAIN", "LOGIN"), ...,
                  smtputf8=True, eightbitmime=True,  # EHLO offers, as
                  # Gmail's; off: no SMTPUTF8 (aiosmtpd then refuses
                  # UTF-8 commands with 500) or no 8BITMIME keyword
                  xoauth2_tokens=None)   # tokens.json of oauthsrv.py;
                  # with "XOAUTH2" in auth_mechs: Gmail-like XOAUTH2
                  # (334 + 535 for a bad token), "xoauth2" events
    up.start(); up.port; up.stop(); up.kill(); up.restart()
    up.messages(outcome="accepted")  -> [Message]: n, mail_from ("" for
        <>), rcpt_tos, mail_options (the MAIL FROM parameters as sent,
        upper-cased: "SIZE=123", "BODY=8BITMIME", "SMTPUTF8"),
        rcpt_options, data (bytes exactly as
        received, dot-unstuffed, CRLF kept), auth_user, tls, tls_version,
        conn_id, msg_in_conn, helo, outcome, reply
    up.wait_messages(n), up.events(ev=None), up.wait_event(pred),
    up.errors(), up.set_rules([...]), up.clear_rules(), up.set_users({}),
    up.rule_hits()

Rules (changeable while running; re-read on every command): a list of
dicts, the first applicable one is used:
    cmd     MAIL RCPT DATA AUTH EHLO HELO STARTTLS RSET NOOP QUIT CONNECT
    match   optional substring of the argument (MAIL/RCPT: the text after
            the verb, AUTH: the mechanism, CONNECT: "ip:port", DATA: the
            message content)
    reply   reply to send instead ("\\n" separates lines of a multi-line
            reply); any 421 reply closes the connection afterwards
    action  "drop": close the connection without a reply (DATA: after the
            content was received and stored with outcome "dropped");
            "delay": wait "seconds" first, then reply or go on normally
    times   apply only N times (counted across restarts until the next
            set_rules)
    when    DATA only: "content" (default, after the data) or "command"
            (reply to the DATA verb itself, before 354)
A CONNECT rule with a reply replaces the greeting and closes.

Files in workdir: config.json, port, rules.json, rules_used.json,
events.jsonl (one JSON object a line, appended), messages/NNNNNN.eml and
.json (written tmp+rename; the .json is published last), upstream.log.
Passwords are never written anywhere.

"upstream.py --bench [N [CONNS]]" measures the sink's own ceiling (N
1 KB messages over CONNS (1) STARTTLS+AUTH smtplib connections).
"""

import asyncio
import base64
import atexit
import collections
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import time
import traceback
import types
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable
TIMEOUT = float(os.environ.get("ITEST_TIMEOUT", "30"))
AUTH_FAIL = "535 5.7.8 Username and Password not accepted"
GMAIL_SIZE = 35882577


def _write_atomic(path, data):
    """Writes bytes or str to path via a temporary file and rename."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.rename(tmp, path)


def _read_json(path, default=None):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return default


def read_events(path, ev=None):
    """Parses an events.jsonl file (missing: empty), skipping a torn last
    line; only events of kind ev if given."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in raw.split(b"\n"):
        try:
            e = json.loads(line)
        except ValueError:
            continue        # a torn last line after a SIGKILL
        if ev is None or e.get("ev") == ev:
            out.append(e)
    return out


def _certs():
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import certs
    return certs


_running = set()


@atexit.register
def _kill_leftovers():
    for up in list(_running):
        up.kill()


def _wait(pred, timeout, what):
    """Polls pred() with a bounded timeout; returns its true value."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0fs waiting for %s"
                                 % (timeout, what))
        time.sleep(delay)       # poll interval, not synchronisation
        delay = min(delay * 1.5, 0.1)


# ====================================================================
# Test side

class Message(types.SimpleNamespace):
    """One received message; attributes as in the module docstring."""


class Upstream:
    """Controls one upstream server process working in workdir."""

    def __init__(self, workdir, tls="starttls", cert=None, key=None,
                 users=None, auth_required=True, offer_starttls=True,
                 require_starttls=None, size=GMAIL_SIZE,
                 auth_mechs=("PLAIN", "LOGIN"), hostname="upstream.test",
                 smtputf8=True, eightbitmime=True, timeout=300,
                 host="127.0.0.1", port=0,
                 auth_fail_reply=AUTH_FAIL, tls_min_version="TLSv1_2",
                 xoauth2_tokens=None):
        if tls not in ("starttls", "implicit", "none"):
            raise ValueError("tls must be starttls, implicit or none")
        self.workdir = os.path.abspath(workdir)
        os.makedirs(os.path.join(self.workdir, "messages"), exist_ok=True)
        if tls != "none" and cert is None:
            pki = _certs().make_pki(os.path.join(self.workdir, "pki"))
            cert, key = pki.server_crt, pki.server_key
        if require_starttls is None:
            require_starttls = tls == "starttls" and offer_starttls
        self.users = dict({"user@test": "secret"} if users is None
                          else users)
        self.config = {
            "workdir": self.workdir, "host": host, "port": port,
            "tls": tls, "cert": cert, "key": key, "users": self.users,
            "auth_required": auth_required,
            "offer_starttls": offer_starttls,
            "require_starttls": require_starttls, "size": size,
            "auth_mechs": list(auth_mechs), "hostname": hostname,
            "smtputf8": smtputf8, "eightbitmime": eightbitmime,
            "timeout": timeout,
            "auth_fail_reply": auth_fail_reply,
            "tls_min_version": tls_min_version,
            "xoauth2_tokens": xoauth2_tokens,
        }
        self.host = host
        self.port = port or None
        self.proc = None
        self._rules = []
        self._rules_gen = 0
        self._log = None

    def _path(self, *p):
        return os.path.join(self.workdir, *p)

    # --- process control

    def start(self, timeout=TIMEOUT):
        """Starts the server (on the previous port after a stop) and
        waits until it listens."""
        if self.proc is not None:
            raise RuntimeError("upstream already running")
        cfg = dict(self.config, port=self.port or 0,
                   parent_pid=os.getpid())
        _write_atomic(self._path("config.json"), json.dumps(cfg, indent=1))
        try:
            os.unlink(self._path("port"))
        except FileNotFoundError:
            pass
        self._log = open(self._path("upstream.log"), "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-u", os.path.abspath(__file__), "--config",
             self._path("config.json")],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        _running.add(self)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("upstream exited with %s:\n%s"
                                   % (self.proc.returncode, self.log_text()))
            info = _read_json(self._path("port"))
            return info if info and info.get("pid") == self.proc.pid \
                else None
        self.port = _wait(ready, timeout, "upstream port file")["port"]
        return self

    def _reap(self, timeout):
        try:
            self.proc.wait(timeout)
        finally:
            _running.discard(self)
            self.proc = None
            if self._log:
                self._log.close()
                self._log = None

    def stop(self, timeout=TIMEOUT):
        """Clean stop (SIGTERM: listener and connections closed)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._reap(timeout)

    def kill(self, timeout=TIMEOUT):
        """SIGKILL: connections die without any SMTP goodbye."""
        if self.proc is None:
            return
        self.proc.kill()
        self._reap(timeout)

    def restart(self, timeout=TIMEOUT):
        """stop() then start() on the same port."""
        self.stop(timeout)
        return self.start(timeout)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self if self.proc else self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- scripting

    def _write_rules(self):
        _write_atomic(self._path("rules.json"), json.dumps(
            {"gen": self._rules_gen, "rules": self._rules,
             "users": self.users}))

    def set_rules(self, rules):
        """Replaces the rule list (see module docstring); "times"
        counters restart."""
        self._rules = list(rules)
        self._rules_gen += 1
        self._write_rules()

    def clear_rules(self):
        self.set_rules([])

    def set_users(self, users):
        """Replaces the accepted {user: password} map at run time."""
        self.users = dict(users)
        self.config["users"] = self.users
        self._write_rules()

    def rule_hits(self):
        """{rule index: times applied} for the current rule list."""
        st = _read_json(self._path("rules_used.json"), {})
        if st.get("gen") != self._rules_gen:
            return {}
        return {int(k): v for k, v in st.get("used", {}).items()}

    # --- observation

    def messages(self, outcome="accepted"):
        """Stored messages in arrival order; outcome None means all
        (accepted, rejected, dropped, aborted)."""
        out = []
        d = self._path("messages")
        for name in sorted(os.listdir(d)):
            if not name.endswith(".json"):
                continue
            rec = _read_json(os.path.join(d, name))
            if rec is None or (outcome and rec["outcome"] != outcome):
                continue
            with open(os.path.join(d, name[:-5] + ".eml"), "rb") as f:
                rec["data"] = f.read()
            out.append(Message(**rec))
        return out

    def wait_messages(self, n, timeout=TIMEOUT, outcome="accepted"):
        """Waits until at least n messages are stored; returns them."""
        return _wait(lambda: (lambda m: m if len(m) >= n else None)(
            self.messages(outcome)), timeout, "%d upstream messages" % n)

    def events(self, ev=None):
        """The event log (list of dicts); only kind ev if given."""
        return read_events(self._path("events.jsonl"), ev)

    def wait_event(self, pred, timeout=TIMEOUT, what="upstream event"):
        """Waits for an event e with pred(e) true; returns it."""
        def find():
            for e in self.events():
                if pred(e):
                    return e
            return None
        return _wait(find, timeout, what)

    def errors(self):
        """Internal errors of the server (should stay empty)."""
        return self.events("error")

    def log_text(self):
        try:
            with open(self._path("upstream.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


# ====================================================================
# Server side (runs in the child process)

class State:
    """Process-wide server state: files, counters, rules, users."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.dir = cfg["workdir"]
        self.msgdir = os.path.join(self.dir, "messages")
        os.makedirs(self.msgdir, exist_ok=True)
        self.evfd = os.open(os.path.join(self.dir, "events.jsonl"),
                            os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.next_msg = 1 + max(
            [int(n[:-5]) for n in os.listdir(self.msgdir)
             if n.endswith(".json") and n[:-5].isdigit()] or [0])
        self.next_conn = 1 + max(
            [e.get("conn") or 0 for e in read_events(
                os.path.join(self.dir, "events.jsonl"))] or [0])
        self.rules_path = os.path.join(self.dir, "rules.json")
        self.used_path = os.path.join(self.dir, "rules_used.json")
        self._stamp = None
        self.rules, self.gen, self.used = [], None, {}
        self.users = dict(cfg["users"])
        self.refresh()

    def event(self, ev, **kw):
        kw = dict(t=round(time.time(), 6), ev=ev, **kw)
        os.write(self.evfd, (json.dumps(kw) + "\n").encode())

    def refresh(self):
        """Re-reads rules.json if it was replaced since the last look."""
        try:
            st = os.stat(self.rules_path)
        except FileNotFoundError:
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        doc = _read_json(self.rules_path)
        if not isinstance(doc, dict):
            return              # cannot happen with rename; be safe
        self._stamp = stamp
        self.rules = doc.get("rules") or []
        if doc.get("users") is not None:
            self.users = dict(doc["users"])
        if doc.get("gen") != self.gen:
            self.gen = doc.get("gen")
            old = _read_json(self.used_path, {})
            self.used = {int(k): v for k, v in old.get("used", {}).items()} \
                if old.get("gen") == self.gen else {}

    def match(self, cmd, arg, stage="command"):
        """The first rule for cmd applicable to arg (str, or bytes for
        DATA content), counted as used; None if there is none."""
        self.refresh()
        for i, r in enumerate(self.rules):
            if str(r.get("cmd", "")).upper() != cmd:
                continue
            if cmd == "DATA" and r.get("when", "content") != stage:
                continue
            m = r.get("match")
            if m is not None:
                if isinstance(arg, bytes):
                    m = m.encode("utf-8")
                if m not in (arg or type(m)()):
                    continue
            if r.get("times") is not None and \
                    self.used.get(i, 0) >= int(r["times"]):
                continue
            self.used[i] = self.used.get(i, 0) + 1
            _write_atomic(self.used_path, json.dumps(
                {"gen": self.gen, "used": self.used}))
            return dict(r, index=i)
        return None

    def store(self, rec, data):
        """Stores one message: .eml, then .json; returns its number."""
        n = self.next_msg
        self.next_msg += 1
        rec["n"] = n
        base = os.path.join(self.msgdir, "%06d" % n)
        _write_atomic(base + ".eml", data)
        _write_atomic(base + ".json", json.dumps(rec, indent=1))
        self.event("message", conn=rec["conn_id"], n=n,
                   outcome=rec["outcome"], size=len(data))
        return n


def _server_classes():
    """Defines the aiosmtpd-based classes (import only in the child)."""
    from aiosmtpd.smtp import SMTP, AuthResult, TLSSetupException, MISSING

    class Handler:
        """aiosmtpd hooks: Gmail-like replies, DATA goes to the server."""

        async def handle_MAIL(self, server, session, env, address, opts):
            env.mail_from = address     # "<>" kept: "" means no MAIL
            env.mail_options.extend(opts)
            return "250 2.1.0 OK"

        async def handle_RCPT(self, server, session, env, address, opts):
            env.rcpt_tos.append(address)
            env.rcpt_options.extend(opts)
            return "250 2.1.5 OK"

        async def handle_DATA(self, server, session, env):
            return await server.data_done(env)

        async def handle_QUIT(self, server, session, env):
            return "221 2.0.0 closing connection"

    class UpstreamSMTP(SMTP):
        """SMTP session with events, rules and Gmail-like EHLO."""

        live = set()

        def __init__(self, state, starttls_ctx):
            cfg = state.cfg
            self.state = state
            self.cfg = cfg
            self.auth_plaintext = (cfg["tls"] == "none"
                                   or not cfg["offer_starttls"])
            super().__init__(
                Handler(), hostname=cfg["hostname"],
                ident="ESMTP smartrelay test upstream",
                data_size_limit=cfg["size"] or None,
                enable_SMTPUTF8=cfg["smtputf8"],
                tls_context=starttls_ctx, timeout=cfg["timeout"],
                auth_required=cfg["auth_required"],
                auth_require_tls=False,     # checked in command()
                authenticator=self.check_password,
                auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN",
                                                    "XOAUTH2")
                                        if m not in cfg["auth_mechs"]])
            # aiosmtpd shares this dict between instances; own one.
            self.command_size_limits = collections.defaultdict(lambda: 1000)
            self._smtp_methods = {name: self._wrap(name, m) for name, m
                                  in self._smtp_methods.items()}
            self.conn_id = None
            self.msg_in_conn = 0
            self.auth_user = None
            self.tried_user = None
            self.last_reply = None
            self.closed = False

        def ev(self, ev, **kw):
            self.state.event(ev, conn=self.conn_id, **kw)

        def tls_info(self):
            t = self.transport
            o = t.get_extra_info("ssl_object") if t is not None else None
            return (o.version(), o.cipher()[0]) if o is not None \
                else (None, None)

        def in_tls(self):
            return self.tls_info()[0] is not None

        # --- connection life

        def connection_made(self, transport):
            starttls = (self._original_transport is not None
                        and self.transport is not None)
            super().connection_made(transport)
            ver, ciph = self.tls_info()
            if starttls:
                self.auth_user = None       # RFC 3207: forget it all
                self.ev("tls", version=ver, cipher=ciph)
                return
            self.conn_id = self.state.next_conn
            self.state.next_conn += 1
            UpstreamSMTP.live.add(self)
            peer = self.session.peer
            self.ev("connect", peer="%s:%s" % peer[:2], tls=ver is not None,
                    tls_version=ver)

        def connection_lost(self, error):
            if not self.closed:
                self.closed = True
                UpstreamSMTP.live.discard(self)
                self.ev("disconnect", error=repr(error) if error else None)
            super().connection_lost(error)

        def drop(self):
            """Closes without a goodbye; the handler task is cancelled
            by connection_lost."""
            self.ev("drop")
            if self.transport is not None:
                self.transport.abort()

        async def hang(self):
            await asyncio.sleep(60)     # cancelled by connection_lost
            return "451 4.3.0 drop did not close"

        async def _handle_client(self):
            try:
                if await self.on_connect():
                    return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                logging.getLogger("upstream").exception("CONNECT rule")
                self.ev("error", error=repr(e))
                self.drop()
                return
            await super()._handle_client()

        async def on_connect(self):
            """CONNECT rules; True if the connection was dealt with."""
            rule = self.state.match("CONNECT", "%s:%s" % self.session.peer[:2])
            if not rule:
                return False
            self.ev("rule", cmd="CONNECT", index=rule["index"])
            if rule.get("action") == "delay":
                await asyncio.sleep(float(rule.get("seconds", 1)))
            if rule.get("action") == "drop":
                self.drop()
                return True
            if rule.get("reply"):
                await self.push(rule["reply"])
                if self.transport is not None:
                    self.transport.close()
                return True
            return False

        async def push(self, status):
            if isinstance(status, bytes):
                status = status.decode("utf-8", "surrogateescape")
            if "\n" in status:          # multi-line reply from a rule
                lines = [x.rstrip("\r") for x in status.split("\n") if x]
                status = "\r\n".join(
                    x[:3] + "-" + x[4:] if i < len(lines) - 1 else x
                    for i, x in enumerate(lines))
            self.ev("reply", reply=status)
            self.last_reply = status
            await super().push(status.encode("utf-8", "surrogateescape"))
            if status.startswith("421") and self.transport is not None:
                self.transport.close()

        async def handle_exception(self, error):
            if isinstance(error, TLSSetupException):
                self.ev("tls_failed", error=repr(error.__cause__))
                return "454 4.7.0 TLS handshake failed"
            text = traceback.format_exc()
            logging.getLogger("upstream").error(
                "conn %s: %s", self.conn_id, text)
            self.ev("error", error=repr(error))
            return "451 4.3.0 test upstream internal error"

        # --- commands

        def _wrap(self, name, method):
            async def run(arg):
                await self.command(name, method, arg)
            for a in ("__smtp_syntax__", "__smtp_syntax_when__",
                      "__smtp_syntax_extended__"):
                if hasattr(method, a):      # for HELP
                    setattr(run, a, getattr(method, a))
            return run

        async def command(self, name, method, arg):
            shown = (arg or "").split(" ")[0] if name == "AUTH" else arg
            tls = self.in_tls()
            self.ev("cmd", cmd=name, arg=shown, tls=tls,
                    pipelined=bool(self._reader._buffer))
            self.last_reply = None
            self.tried_user = None
            done = False
            if (self.cfg["require_starttls"] and not tls and name not in
                    ("EHLO", "HELO", "NOOP", "STARTTLS", "QUIT", "RSET")):
                await self.push("530 5.7.0 Must issue a STARTTLS command "
                                "first.")
                done = True
            elif name == "AUTH" and not tls and not self.auth_plaintext:
                await self.push("538 5.7.11 Encryption required for "
                                "requested authentication mechanism")
                done = True
            if not done:
                rule = self.state.match(name, shown or "")
                if rule:
                    self.ev("rule", cmd=name, index=rule["index"])
                    done = await self.apply(rule)
            if not done:
                await method(arg)
            if name == "AUTH":
                ok = bool(self.session.authenticated)
                if ok and self.auth_user is None:
                    self.auth_user = self.tried_user
                self.ev("auth", mech=(shown or "").upper(), tls=tls,
                        before_tls=not tls,
                        initial_response=len((arg or "").split()) > 1,
                        user=self.tried_user, success=ok,
                        reply=self.last_reply)

        async def apply(self, rule):
            """Carries out a rule; True if the command is answered."""
            action = rule.get("action")
            if action == "delay":
                await asyncio.sleep(float(rule.get("seconds", 1)))
            elif action == "drop":
                self.drop()
                await self.hang()
                return True
            if rule.get("reply"):
                await self.push(rule["reply"])
                return True
            return False

        async def smtp_EHLO(self, hostname):
            if not hostname:
                return await self.push("501 5.5.4 Syntax: EHLO hostname")
            self._set_rset_state()
            self.session.extended_smtp = True
            self.session.host_name = hostname
            cfg = self.cfg
            tls = self.in_tls()
            ext = ["%s at your service" % self.hostname]
            if cfg["size"]:
                ext.append("SIZE %d" % cfg["size"])
            if cfg.get("eightbitmime", True):
                ext.append("8BITMIME")
            if self.tls_context and not tls:
                ext.append("STARTTLS")
            if tls or self.auth_plaintext:
                ext.append("AUTH " + " ".join(cfg["auth_mechs"]))
            ext += ["ENHANCEDSTATUSCODES", "PIPELINING"]
            if cfg["smtputf8"]:
                ext.append("SMTPUTF8")
            await self.push("\n".join("250 " + x for x in ext))

        def xoauth2_valid(self, user, token):
            """Is <token> one the fake token endpoint issued for <user>
            and still valid (tokens.json, re-read every time)?"""
            doc = _read_json(self.cfg.get("xoauth2_tokens") or "", {})
            t = (doc.get("tokens") or {}).get(token)
            return bool(t) and t.get("user") == user and \
                t.get("exp", 0) > time.time()

        async def auth_XOAUTH2(self, _, args):
            """Google's XOAUTH2: base64("user=U^Aauth=Bearer T^A^A").  A
            bad token gets, like Gmail, a 334 with a base64 JSON error,
            then 535 after the client's (empty) answer."""
            if len(args) == 1:
                blob = await self.challenge_auth("")
                if blob is MISSING:
                    return AuthResult(success=False, handled=True)
            else:
                try:
                    blob = base64.b64decode(args[1], validate=True)
                except ValueError:
                    await self.push("501 5.5.2 Cannot decode base64")
                    return AuthResult(success=False, handled=True)
            user = token = None
            parts = blob.split(b"\x01")
            for p in parts:
                if p.startswith(b"user="):
                    user = p[5:].decode("utf-8", "replace")
                elif p.startswith(b"auth=Bearer "):
                    token = p[12:].decode("utf-8", "replace")
            well_formed = parts[-2:] == [b"", b""] and user and token
            self.tried_user = user
            ok = bool(well_formed) and self.xoauth2_valid(user, token)
            self.ev("xoauth2", user=user, token=token, valid=ok,
                    well_formed=bool(well_formed))
            if ok:
                self.auth_user = user
                return AuthResult(success=True, auth_data=user)
            err = json.dumps({"status": "400", "schemes": "Bearer",
                              "scope": "https://mail.google.com/"})
            if await self.challenge_auth(err) is MISSING:
                return AuthResult(success=False, handled=True)
            return AuthResult(success=False, handled=False,
                              message=self.cfg["auth_fail_reply"])

        def check_password(self, server, session, env, mech, data):
            user = data.login.decode("utf-8", "replace")
            self.tried_user = user
            want = self.state.users.get(user)
            if want is not None and \
                    want.encode("utf-8") == data.password:
                self.auth_user = user
                return AuthResult(success=True, auth_data=user)
            return AuthResult(success=False, handled=False,
                              message=self.cfg["auth_fail_reply"])

        async def data_done(self, env):
            """End of DATA: rules, then store the message."""
            content = env.original_content
            rule = self.state.match("DATA", content, "content")
            ver, _ = self.tls_info()
            self.msg_in_conn += 1
            rec = {"conn_id": self.conn_id, "msg_in_conn": self.msg_in_conn,
                   "mail_from": "" if env.mail_from == "<>"
                   else env.mail_from, "rcpt_tos": env.rcpt_tos,
                   "mail_options": env.mail_options,
                   "rcpt_options": env.rcpt_options,
                   "helo": self.session.host_name,
                   "auth_user": self.auth_user if
                   self.session.authenticated else None,
                   "tls": ver is not None, "tls_version": ver,
                   "size": len(content), "time": time.time()}
            if rule:
                self.ev("rule", cmd="DATA", index=rule["index"])
                if rule.get("action") == "delay":
                    try:
                        await asyncio.sleep(float(rule.get("seconds", 1)))
                    except asyncio.CancelledError:
                        self.state.store(dict(rec, outcome="aborted",
                                              reply=None), content)
                        raise
                if rule.get("action") == "drop":
                    self.state.store(dict(rec, outcome="dropped",
                                          reply=None), content)
                    self.drop()
                    return await self.hang()
                if rule.get("reply"):
                    self.state.store(dict(rec, outcome="rejected",
                                          reply=rule["reply"]), content)
                    return rule["reply"]
            n = self.state.next_msg
            reply = "250 2.0.0 OK %d" % n
            self.state.store(dict(rec, outcome="accepted", reply=reply),
                             content)
            return reply

    return UpstreamSMTP


def _tls_context(cfg):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = getattr(ssl.TLSVersion,
                                  cfg.get("tls_min_version") or "TLSv1_2")
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    return ctx


def serve(cfg):
    """Runs the server until SIGTERM/SIGINT (or the parent's death)."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s upstream[%(process)d] "
                        "%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    state = State(cfg)
    cls = _server_classes()
    ctx = _tls_context(cfg) if cfg["tls"] != "none" else None
    stls = ctx if cfg["tls"] == "starttls" and cfg["offer_starttls"] \
        else None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def on_error(lp, context):
        exc = context.get("exception")
        if isinstance(exc, (ssl.SSLError, ConnectionError)):
            state.event("tls_failed", conn=None, error=repr(exc))
            return
        logging.getLogger("upstream").error("loop: %s %r",
                                            context.get("message"), exc)
        state.event("error", conn=None, error="%s %r"
                    % (context.get("message"), exc))
    loop.set_exception_handler(on_error)
    server = None
    deadline = time.monotonic() + 10
    while server is None:       # same port after a restart: may linger
        try:
            server = loop.run_until_complete(loop.create_server(
                lambda: cls(state, stls), cfg["host"], cfg["port"],
                ssl=ctx if cfg["tls"] == "implicit" else None,
                reuse_address=True))
        except OSError:
            if not cfg["port"] or time.monotonic() > deadline:
                raise
            time.sleep(0.05)    # port still busy: bounded retry
    port = server.sockets[0].getsockname()[1]

    def shutdown(reason):
        state.event("shutdown", conn=None, reason=reason)
        server.close()
        for c in list(cls.live):
            if c.transport is not None:
                c.transport.close()
        loop.call_later(0.05, loop.stop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown, signal.Signals(sig).name)
    parent = cfg.get("parent_pid")

    def watch_parent():
        if parent and os.getppid() != parent:
            shutdown("parent died")
        else:
            loop.call_later(0.5, watch_parent)
    watch_parent()
    state.event("start", conn=None, pid=os.getpid(), port=port,
                tls=cfg["tls"])
    _write_atomic(os.path.join(cfg["workdir"], "port"),
                  json.dumps({"port": port, "pid": os.getpid()}))
    loop.run_forever()
    tasks = asyncio.all_tasks(loop)
    for t in tasks:
        t.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()


# ====================================================================
# Benchmark

def _bench_conn(port, ctx, n, body):
    import smtplib
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test")
    s.starttls(context=ctx)
    s.login("user@test", "secret")
    for _ in range(n):
        s.sendmail("a@bench.test", ["b@bench.test"], body)
    s.quit()


def bench(n=500, conns=1):
    """Sends n 1 KB messages over <conns> STARTTLS+AUTH smtplib
    connections (no pipelining) and prints the rate the sink sustains,
    with the sink's own CPU time."""
    import shutil
    import tempfile
    import threading
    certs = _certs()
    d = tempfile.mkdtemp(prefix="upstream-bench.")
    pki = certs.make_pki(os.path.join(d, "pki"))
    up = Upstream(d, cert=pki.server_crt, key=pki.server_key).start()

    def cpu():
        with open("/proc/%d/stat" % up.proc.pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    try:
        ctx = ssl.create_default_context(cafile=pki.ca_crt)
        head = b"Subject: bench\r\n\r\n"
        line = b"x" * 78 + b"\r\n"
        body = head + line * ((1024 - len(head)) // 80)
        body += b"y" * (1024 - len(body) - 2) + b"\r\n"
        c0 = cpu()
        t0 = time.monotonic()
        threads = [threading.Thread(target=_bench_conn, args=(
            up.port, ctx, n // conns, body)) for _ in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.monotonic() - t0
        total = n // conns * conns
        got = len(up.wait_messages(total))
        print("upstream sink: %d messages of %d bytes over %d STARTTLS+AUTH "
              "connection(s) in %.2fs: %.0f msgs/s; sink CPU %.2fs "
              "(%.2f ms/msg); stored %d"
              % (total, len(body), conns, dt, total / dt, cpu() - c0,
                 1000 * (cpu() - c0) / total, got))
    finally:
        up.stop()
        shutil.rmtree(d, ignore_errors=True)


def main(argv):
    if len(argv) >= 2 and argv[1] == "--bench":
        bench(int(argv[2]) if len(argv) > 2 else 500,
              int(argv[3]) if len(argv) > 3 else 1)
        return 0
    if len(argv) == 3 and argv[1] == "--config":
        arg = argv[2]
        if arg.lstrip().startswith("{"):
            cfg = json.loads(arg)
        else:
            with open(arg) as f:
                cfg = json.load(f)
        serve(cfg)
        return 0
    sys.stderr.write("usage: upstream.py --config FILE|JSON | "
                     "--bench [N [CONNS]]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
