#!/usr/bin/env python3
"""A stand-in tile server on 127.0.0.1 for the browser test: any
/tiles/{z}/{x}/{y}.png gets a 256×256 PNG (a light grid, made here with
zlib, no imaging library), and each request path is appended to a log.
Usage: tile_server.py PORT_FILE LOG_FILE"""
import http.server
import struct
import sys
import zlib


def png():
    rows = []
    for y in range(256):
        row = bytearray([0])  # filter: none
        for x in range(256):
            edge = x % 64 == 0 or y % 64 == 0
            row += bytes((200, 214, 226) if edge else (232, 238, 243))
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 256, 256, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b''.join(rows), 9)) + chunk(b'IEND', b''))


TILE = png()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], 'a') as log:
            log.write(self.path + '\n')
        if not self.path.startswith('/tiles/'):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'image/png')
        self.send_header('Content-Length', str(len(TILE)))
        self.end_headers()
        self.wfile.write(TILE)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
with open(sys.argv[1], 'w') as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
