#!/usr/bin/env python3
"""A real SMTP server on 127.0.0.1 for the delivery tests and the demo.

aiosmtpd (Debian: python3-aiosmtpd) with STARTTLS (a certificate made by the
caller), optional AUTH, and fault injection by recipient:
  perm-fail…@  → 550 at RCPT (a permanent failure)
  temp-fail…@  → 451 at RCPT for the first two attempts, then accepted
Every accepted mail is written as N.eml (the message as received) and
N.json (envelope) into the mail directory.

usage: smtp_sink.py MAILDIR PORTFILE [--cert C --key K] [--auth user:pass]
"""
import argparse
import asyncio
import itertools
import json
import os
import socket
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

counter = itertools.count(1)
lock = threading.Lock()
temp_failures = {}


class Sink:
    def __init__(self, maildir):
        self.maildir = maildir

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split('@')[0].lower()
        if local.startswith('perm-fail'):
            return '550 5.1.1 No such mailbox here'
        if local.startswith('temp-fail'):
            with lock:
                n = temp_failures.get(address, 0)
                temp_failures[address] = n + 1
            if n < 2:
                return '451 4.3.0 Try again later'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        base = os.path.join(self.maildir, '%06d' % n)
        with open(base + '.eml.tmp', 'wb') as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + '.json', 'w') as f:
            json.dump({'mail_from': envelope.mail_from, 'rcpt_tos': envelope.rcpt_tos,
                       'tls': session.ssl is not None, 'auth': session.authenticated}, f)
        os.rename(base + '.eml.tmp', base + '.eml')
        return '250 Message accepted for delivery'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('maildir')
    ap.add_argument('portfile')
    ap.add_argument('--cert')
    ap.add_argument('--key')
    ap.add_argument('--auth')
    a = ap.parse_args()
    os.makedirs(a.maildir, exist_ok=True)

    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()

    kwargs = {}
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(a.cert, a.key)
        kwargs['tls_context'] = ctx
        kwargs['require_starttls'] = True
    if a.auth:
        user, password = a.auth.split(':', 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and \
                auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok)
        kwargs['authenticator'] = authenticator
        kwargs['auth_require_tls'] = bool(a.cert)
    ctl = Controller(Sink(a.maildir), hostname='127.0.0.1', port=port, **kwargs)
    ctl.start()
    with open(a.portfile + '.tmp', 'w') as f:
        f.write(str(port))
    os.rename(a.portfile + '.tmp', a.portfile)
    try:
        threading.Event().wait()
    finally:
        ctl.stop()


if __name__ == '__main__':
    main()
