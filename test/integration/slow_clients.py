#!/usr/bin/env python3
"""Slow clients against the HTTP worker, for web.sh (finding 9 of issue 19).

Opens N connections from the loopback address SLOW_FROM to HOST:PORT; each
sends the start of a request and then, once a second, one more byte of a
header line that never ends, so that it is never idle and its headers are
never complete.  Two seconds after the last of them was opened, a normal
GET /healthz comes from PROBE_FROM ("-": no probe) and waits at most
PROBE_WAIT seconds for its answer.  The slow connections keep trickling
until the server has closed every one of them, or for at most HOLD seconds.
With a last argument "after-request", each slow connection first sends a
whole request and reads its answer, and only then trickles the headers of
its next one (a kept-alive connection that turns slow).
No timing is judged here: the script says what happened, web.sh decides.

Prints key=value lines:
  probe=answered|unanswered|none   the GET from PROBE_FROM got a 200 in time
  opened=N                         slow connections the kernel accepted
  closed=K                         of those, closed by the server before HOLD ran out
  open=M                           still open when the script stopped

Usage: slow_clients.py HOST PORT SLOW_FROM N PROBE_FROM PROBE_WAIT HOLD [after-request]
"""
import errno
import resource
import selectors
import socket
import sys
import time

host, port, slow_from, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
probe_from, probe_wait, hold = sys.argv[5], float(sys.argv[6]), float(sys.argv[7])
after_request = sys.argv[8:] == ['after-request']

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))

sel = selectors.DefaultSelector()
start = time.monotonic()
slow = {}                   # socket -> whether it is still open


def close(s):
    sel.unregister(s)
    s.close()
    slow[s] = False


def first_request(s):
    """a whole request on a kept-alive connection, and its whole answer"""
    s.settimeout(10)
    s.sendall(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    got = b''
    while b'\r\n\r\n' not in got:
        got += s.recv(4096)
    head, body = got.split(b'\r\n\r\n', 1)
    length = int(next(line.split(b':')[1] for line in head.split(b'\r\n') if line.lower().startswith(b'content-length')))
    while len(body) < length:
        body += s.recv(4096)


for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((slow_from, 0))
    if after_request:
        s.connect((host, port))
        first_request(s)
    s.setblocking(False)
    rc = 0 if after_request else s.connect_ex((host, port))
    if rc not in (0, errno.EINPROGRESS):
        s.close()
        continue
    slow[s] = None          # connecting
    sel.register(s, selectors.EVENT_WRITE, 'slow')

probe = None
probe_state = 'none'
probe_at = time.monotonic() + 2 if probe_from != '-' else None
probe_deadline = None
probe_buf = b''
last_tick = 0.0

while time.monotonic() - start < hold:
    now = time.monotonic()
    if probe_at is not None and now >= probe_at:
        probe_at = None
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.setblocking(False)
        probe.bind((probe_from, 0))
        probe.connect_ex((host, port))
        sel.register(probe, selectors.EVENT_WRITE, 'probe')
        probe_state = 'unanswered'
        probe_deadline = now + probe_wait
    if probe is not None and now >= probe_deadline:
        sel.unregister(probe)
        probe.close()
        probe = None
    # one more byte on every open slow connection, once a second
    if now - last_tick >= 1:
        last_tick = now
        for s, state in list(slow.items()):
            if state:
                try:
                    s.send(b'a')
                except OSError:
                    close(s)
    if probe is None and probe_at is None and not any(v is None or v for v in slow.values()):
        break               # every slow connection is closed, the probe is done
    for key, events in sel.select(timeout=0.2):
        s = key.fileobj
        if key.data == 'probe':
            if events & selectors.EVENT_WRITE:
                s.send(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
                sel.modify(s, selectors.EVENT_READ, 'probe')
                continue
            try:
                chunk = s.recv(4096)
            except OSError:
                chunk = b''
            probe_buf += chunk
            if probe_buf.startswith(b'HTTP/1.1 200'):
                probe_state = 'answered'
            if not chunk or probe_state == 'answered':
                sel.unregister(s)
                s.close()
                probe = None
            continue
        if slow[s] is None:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                close(s)
                continue
            slow[s] = True
            try:
                s.send(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ')
            except OSError:
                close(s)
                continue
            sel.modify(s, selectors.EVENT_READ, 'slow')
            continue
        try:
            gone = s.recv(4096) == b''
        except OSError:
            gone = True
        if gone:
            close(s)

opened = sum(1 for v in slow.values() if v is not None)
still = sum(1 for v in slow.values() if v)
print('probe=%s' % probe_state)
print('opened=%d' % opened)
print('closed=%d' % (opened - still))
print('open=%d' % still)
