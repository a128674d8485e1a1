#!/usr/bin/env python3
"""A webhook receiver on 127.0.0.1 for the delivery tests and the demo.

Answers by path, keeping count per Idempotency-Key (fault injection):
  /ok     200
  /slow   200 after 2 ms (the crash tests)
  /fail   500 always
  /flaky  500 for the first two attempts of a message, then 200
  /r429   429 with Retry-After: 1 the first time, then 200
  /hang   the first time: no answer for 5 s (past the dispatcher's timeout), then 200
  /close  the first time: the connection is closed in the middle of the answer, then 200
  /gone   410 always (a permanent failure)
  /leak   500 always, with a marker (LEAK_MARKER) in the body, the reason
          phrase and a header: none of it may reach what viewers read
Every request is appended as one JSON line (time, path, headers, body, status) to
LOGFILE.  GET /_stats returns {"requests": n, "keys": {key: count},
"connections": n} (connections accepted, this one's included).

usage: webhook_sink.py LOGFILE PORTFILE
"""
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LEAK_MARKER = 'SC-LEAK-MARKER-7f3a'
lock = threading.Lock()
seen = {}        # (path, key) -> attempts
log = None
total = 0
connections = 0


class Server(ThreadingHTTPServer):
    def verify_request(self, request, client_address):
        global connections
        with lock:
            connections += 1
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def reply(self, status, body=b'ok', extra=None, reason=None):
        self.send_response(status, reason)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == '/_stats':
            with lock:
                keys = {k: v for (p, k), v in seen.items()}
                body = json.dumps({'requests': total, 'keys': keys, 'connections': connections}).encode()
            self.reply(200, body, {'Content-Type': 'application/json'})
        else:
            self.reply(404, b'not found')

    def do_POST(self):
        global total
        n = int(self.headers.get('Content-Length', 0))
        body = self.rfile.read(n)
        key = self.headers.get('Idempotency-Key', '')
        path = self.path.split('?')[0]
        with lock:
            attempt = seen.get((path, key), 0) + 1
            seen[(path, key)] = attempt
            total += 1
        status = 200
        if path == '/fail':
            status = 500
        elif path == '/flaky' and attempt <= 2:
            status = 500
        elif path == '/r429' and attempt == 1:
            status = 429
        elif path == '/gone':
            status = 410
        elif path == '/leak':
            status = 500
        elif path == '/hang' and attempt == 1:
            status = 0
        elif path == '/close' and attempt == 1:
            status = -1
        with lock:
            log.write(json.dumps({'time': time.time(), 'path': path, 'attempt': attempt, 'status': status,
                                  'headers': dict(self.headers.items()),
                                  'body': body.decode('utf-8', 'replace')}, ensure_ascii=False) + '\n')
            log.flush()
        if status == 0:
            time.sleep(5)
            self.close_connection = True
            return
        if status == -1:
            # the headers promise 100 bytes; 10 come, then the connection is gone
            self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if path == '/slow':
            time.sleep(0.002)
        if path == '/leak':
            return self.reply(500, ('{"error": "%s: internal detail"}' % LEAK_MARKER).encode(),
                              {'X-Debug': LEAK_MARKER}, LEAK_MARKER + ' reason')
        extra = {'Retry-After': '1'} if status == 429 else None
        self.reply(status, b'ok' if status == 200 else b'{"error": "injected"}', extra)


def main():
    global log
    log = open(sys.argv[1], 'a', encoding='utf-8')
    # a listen backlog for a dispatcher that opens 64 connections at once
    # (the default of 5 drops SYNs: connection timeouts that are ours, not its)
    Server.request_queue_size = 256
    srv = Server(('127.0.0.1', 0), Handler)
    srv.daemon_threads = True
    with open(sys.argv[2] + '.tmp', 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(sys.argv[2] + '.tmp', sys.argv[2])
    srv.serve_forever()


if __name__ == '__main__':
    main()
