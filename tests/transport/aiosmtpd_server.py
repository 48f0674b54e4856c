"""A real SMTP server for mailroom's transport tests, on aiosmtpd.

Writes one JSON line per received message to --out (envelope, options, base64 data)
and prints READY once it listens. Options: --tls starttls|implicit|none with --cert/--key,
--user/--password (AUTH required, only over TLS), --smtputf8 (offer SMTPUTF8),
--reject ADDR (550 on RCPT TO for that address; repeatable), --exclude-auth MECH (do
not offer that AUTH mechanism), --xoauth2-token TOKEN (offer AUTH XOAUTH2 for --user).
"""

import argparse
import asyncio
import base64
import json
import logging
import ssl
import sys
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, out, reject, user=None, token=None):
        self.out = out
        self.reject = {r.lower() for r in reject}
        self.user = user
        self.token = token

    async def auth_XOAUTH2(self, server, args):
        # RFC-less but well known: base64("user=U\x01auth=Bearer T\x01\x01").
        if self.token is None or len(args) < 2:
            return AuthResult(success=False, handled=False)
        expected = "user=%s\x01auth=Bearer %s\x01\x01" % (self.user, self.token)
        try:
            given = base64.b64decode(args[1]).decode()
        except Exception:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=given == expected, auth_data=self.user, handled=False)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "data_b64": base64.b64encode(envelope.original_content).decode(),
            "tls": session.ssl is not None
            or server.transport.get_extra_info("sslcontext") is not None,
            "authenticated": bool(session.authenticated),
            "at": time.time(),
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 Ok: queued as QX%d" % (int(time.time() * 1000) % 100000)


def main():
    # Under implicit TLS aiosmtpd warns that AUTH does not require (STARTTLS) TLS.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tls", default="none", choices=["none", "starttls", "implicit"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--exclude-auth", action="append", default=[])
    p.add_argument("--xoauth2-token")
    a = p.parse_args()

    context = None
    if a.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and \
                auth_data.login.decode() == a.user and auth_data.password.decode() == a.password:
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    kwargs = dict(enable_SMTPUTF8=a.smtputf8, hostname="127.0.0.1", port=a.port)
    if a.user:
        # aiosmtpd counts only STARTTLS as TLS; under implicit TLS every byte is encrypted.
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=(a.tls != "implicit"),
                      auth_exclude_mechanism=a.exclude_auth)
    if a.tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    elif a.tls == "implicit":
        kwargs.update(ssl_context=context)
    controller = Controller(Handler(a.out, a.reject, a.user, a.xoauth2_token), **kwargs)
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()  # run until the test closes our stdin or kills us
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
