#!/usr/bin/env python3
"""A local stand-in for the disaster feeds, on 127.0.0.1 only.

Serves the recorded documents of ../shared/fixtures/feeds the way the real
services do, for the feed watcher's integration test and for the demo:

  /jma/eqvol.xml      the recorded Noto Atom feed (2024-01-01), reduced to the
                      entries whose telegrams are recorded, published one by
                      one (POST /_control/advance), with Last-Modified and
                      ETag; a conditional GET of an unchanged feed gets 304
  /jma/osumi.xml      an Atom feed over JMA's official sample sequence of
                      2010-01-25 (震度速報, its re-issue, 震源, 震源・震度)
  /mirror/...         the same feeds with every telegram under another URL
                      (a replay: same documents, new URLs)
  /bad/eqvol.xml      telegrams that must be refused: truncated, entity
                      expansion, 50 MB, Shift_JIS
  /error/eqvol.xml    always HTTP 500
  /foreign/eqvol.xml  the Osumi feed with its telegrams on other hosts than the
                      feed's (localhost, another port, https): never to be fetched
  /redirect/eqvol.xml the Osumi feed, each telegram redirected (302) to another
                      host (localhost): never to be followed
  /sameredir/eqvol.xml the Osumi feed, each telegram redirected on the same host
  /inward/p2p         a feed that redirects (302) to 127.0.0.2, an address of
                      this machine: the watcher must not go there unless
                      status_checker.allowed_destinations lists it
  /wx/extra.xml       an Atom feed like JMA's extra.xml (高頻度（随時）) over JMA's
                      official weather, landslide, rain, volcano and flood samples
                      (jma/weather/), each under a file name of JMA's form
                      (<Control/DateTime>_0_<product>_<office>.xml; the
                      指定河川洪水予報 sample as VXKO51), oldest last, plus two
                      entries the watcher must not fetch (府県気象情報 VPFJ50,
                      府県天気予報 VPFD50: no such file); ?only=NAME[,NAME…]
                      lists only the samples whose file names start so
  /wx/extra_l.xml     the same as the long-term feed (長期（随時）): the same URLs
  /wxmirror/...       the same feeds with every telegram under another URL
  /p2p/history        P2PQuake /v2/history?codes=551 (recorded array)
  /usgs/summary.geojson  a recorded USGS summary feed
  /data/<file>, /mirror/data/<file>, /wx/data/<file>, /wxmirror/data/<file>,
  /bad/data/<file>, /foreign/data/<file>,
  /elsewhere/data/<file>, /sameredir/moved/<file>   the telegrams
  /_control/advance, /_control/reset, /_control/stats

Usage: feed_server.py FIXTURES_DIR PORT_FILE   (port 0: any free port)
"""
import email.utils
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

FIXTURES = sys.argv[1]
PORT_FILE = sys.argv[2]
ATOM_NS = 'http://www.w3.org/2005/Atom'


def read(path):
    with open(os.path.join(FIXTURES, path), 'rb') as f:
        return f.read()


def control_datetime(body):
    m = re.search(rb'<Control>.*?<DateTime>([^<]+)</DateTime>', body, re.S)
    return m.group(1).decode() if m else None


def product_of(name):
    m = re.search(r'_(V[A-Z0-9]{5})_', name)
    return m.group(1) if m else None


# ---------------------------------------------------------------- Noto feed
capture = read('jma/atom_eqvol_20240101T2053_noto_capture.xml').decode()
entries = re.findall(r'  <entry>.*?</entry>\n', capture, re.S)
head = capture[:capture.index('  <entry>')]
tail = '</feed>\n'

# recorded telegrams, keyed by (product, Control/DateTime)
recorded = {}
for name in sorted(os.listdir(os.path.join(FIXTURES, 'jma'))):
    if name.endswith('.xml') and not name.startswith('atom'):
        body = read('jma/' + name)
        recorded[(name[:6], control_datetime(body))] = body

noto = []   # (updated, file name, body, entry text) oldest first
for e in entries:
    href = re.search(r'href="([^"]+)"', e).group(1)
    updated = re.search(r'<updated>([^<]+)</updated>', e).group(1)
    fname = href.rsplit('/', 1)[1]
    body = recorded.get((product_of(fname), updated))
    if body is not None:
        noto.append((updated, fname, body, e))
noto.sort()

# ---------------------------------------------------------------- Osumi feed
OSUMI = ['VXSE51_sample_20100125_1615_osumi_maxint4__32-35_04_02.xml',
         'VXSE52_sample_20100125_1615_osumi__32-35_04_03.xml',
         'VXSE53_sample_20100125_1615_osumi_serial1__32-35_04_04.xml',
         'VXSE51_sample_20100125_1615_osumi_2nd_issue__32-35_04_05.xml']
osumi = []
for i, name in enumerate(OSUMI):
    body = read('jma/official_samples/' + name)
    dt = control_datetime(body)
    fname = '%s_0_%s_010000.xml' % (re.sub(r'[-T:Z]', '', dt), name[:6])
    title = re.search(rb'<Title>([^<]+)</Title>', body).group(1).decode()
    entry = ('  <entry>\n    <title>%s</title>\n    <id>@@/%s</id>\n    <updated>%s</updated>\n'
             '    <author><name>気象庁</name></author>\n'
             '    <link type="application/xml" href="@@/%s"/>\n'
             '    <content type="text">%s</content>\n  </entry>\n') % (title, fname, dt, fname, title)
    osumi.append((dt, fname, body, entry))

# ---------------------------------------------------------------- weather feed
# JMA's official samples of the warning products, listed the way extra.xml
# lists telegrams: under file names of JMA's form, which is where the Atom
# parser reads the product from
def first(pattern, body):
    m = re.search(pattern, body, re.S)
    return m.group(1).decode() if m else ''


weather = []   # (updated, file name, body, entry text, sample name) oldest first
for i, name in enumerate(sorted(os.listdir(os.path.join(FIXTURES, 'jma/weather')))):
    if not name.endswith('.xml'):
        continue
    body = read('jma/weather/' + name)
    dt = control_datetime(body)
    product = name.split('_', 1)[0]
    if product == 'VXKO':   # JMA numbers 指定河川洪水予報 per river: VXKO50 … VXKO89
        product = 'VXKO51'
    fname = '%s_0_%s_%02d0000.xml' % (re.sub(r'[-T:Z]', '', dt), product, i + 1)
    entry = ('  <entry>\n    <title>%s</title>\n    <id>@@/%s</id>\n    <updated>%s</updated>\n'
             '    <author><name>%s</name></author>\n'
             '    <link type="application/xml" href="@@/%s"/>\n'
             '    <content type="text">%s</content>\n  </entry>\n') % (
        escape(first(rb'<Control>.*?<Title>([^<]+)</Title>', body)), fname, dt,
        escape(first(rb'<EditorialOffice>([^<]+)</EditorialOffice>', body)), fname,
        escape(first(rb'<Head[^>]*>.*?<Title>([^<]+)</Title>', body)))
    weather.append((dt, fname, body, entry, name))
weather.sort()
# entries of products the watcher does not fetch (their files do not exist)
WX_OTHER = [('2016-12-13T11:50:00Z', '20161213115000_0_VPFJ50_130000.xml', '府県気象情報', '東京都気象情報'),
            ('2016-12-13T20:00:00Z', '20161213200000_0_VPFD50_130000.xml', '府県天気予報（Ｒ１）', '東京都府県天気予報')]
wx_other = [(dt, f, None, ('  <entry>\n    <title>%s</title>\n    <id>@@/%s</id>\n    <updated>%s</updated>\n'
                           '    <author><name>気象庁予報部</name></author>\n'
                           '    <link type="application/xml" href="@@/%s"/>\n'
                           '    <content type="text">%s</content>\n  </entry>\n') % (t, f, dt, f, c))
            for dt, f, t, c in WX_OTHER]


def wx_atom(prefix, feed, items):
    title = {'extra': '高頻度（随時）', 'extra_l': '長期（随時）'}[feed]
    body = ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" lang="ja">\n'
            '  <title>%s</title>\n  <subtitle>JMAXML publishing feed</subtitle>\n  <updated>%s</updated>\n'
            '  <id>%s/%s.xml</id>\n  <link rel="related" href="http://www.jma.go.jp/"/>\n'
            '  <link rel="self" href="%s/%s.xml"/>\n') % (title, max(i[0] for i in items), prefix, feed, prefix, feed)
    for item in sorted(items, reverse=True):   # newest first, like JMA
        body += item[3].replace('@@', prefix + '/data')
    return (body + tail).encode()


# ---------------------------------------------------------------- bad feed
vxse53 = read('jma/VXSE53_20210219_iwate_maxint4.xml')
BAD = {
    '20990101000001_0_VXSE53_010000.xml': vxse53[:3000],
    '20990101000002_0_VXSE53_010000.xml':
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><Report xmlns="http://xml.kishou.go.jp/jmaxml1/">&c;&c;</Report>',
    '20990101000003_0_VXSE53_010000.xml': None,   # 50 MB, streamed
    '20990101000004_0_VXSE53_010000.xml': vxse53.decode().encode('shift_jis'),
}

lock = threading.RLock()
state = {'noto': 0, 'osumi': len(osumi), 'changed': time.time()}
stats = {}


def atom(kind, prefix, items):
    body = head.replace('https://www.data.jma.go.jp/developer/xml/feed/eqvol.xml', prefix + '/eqvol.xml')
    for _, fname, _, e in reversed(items):   # newest first, like JMA
        e = re.sub(r'https?://www\.data\.jma\.go\.jp/developer/xml/data', prefix + '/data', e)
        body += e.replace('@@', prefix + '/data')
    return (body + tail).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def count(self, status):
        with lock:
            s = stats.setdefault(self.path, {})
            s[str(status)] = s.get(str(status), 0) + 1

    def send(self, status, body=b'', ctype='application/xml', headers=None):
        self.count(status)
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def redirect(self, location):
        self.count(302)
        self.send_response(302)
        self.send_header('Location', location)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def osumi_file(self, name):
        for _, fname, body, _ in osumi:
            if fname == name:
                return self.send(200, body)
        return self.send(404, b'not found', 'text/plain')

    def conditional(self, body, etag, modified):
        lm = email.utils.formatdate(modified, usegmt=True)
        if self.headers.get('If-None-Match') == etag or self.headers.get('If-Modified-Since') == lm:
            return self.send(304, headers={'ETag': etag, 'Last-Modified': lm})
        return self.send(200, body, headers={'ETag': etag, 'Last-Modified': lm})

    def do_POST(self):
        with lock:
            if self.path == '/_control/advance':
                state['noto'] = min(state['noto'] + 1, len(noto))
            elif self.path == '/_control/reset':
                state['noto'] = 0
            elif self.path == '/_control/publish_all':
                state['noto'] = len(noto)
            else:
                return self.send(404, b'', 'text/plain')
            state['changed'] = time.time()
            body = json.dumps({'published': state['noto'], 'of': len(noto)}).encode()
        self.send(200, body, 'application/json')

    def do_GET(self):
        base = 'http://127.0.0.1:%d' % self.server.server_address[1]
        p = self.path
        with lock:
            published, changed = state['noto'], state['changed']
        if p == '/_control/stats':
            with lock:
                return self.send(200, json.dumps(stats).encode(), 'application/json')
        for prefix in ('/jma', '/mirror'):
            if p == prefix + '/eqvol.xml':
                return self.conditional(atom('noto', base + prefix, noto[:published]),
                                        '"noto-%d"' % published, int(changed))
            if p == prefix + '/osumi.xml':
                return self.conditional(atom('osumi', base + prefix, osumi), '"osumi"', 1264400000)
            if p.startswith(prefix + '/data/'):
                name = p.rsplit('/', 1)[1]
                for _, fname, body, _ in noto[:published] + osumi:
                    if fname == name:
                        return self.send(200, body)
                return self.send(404, b'not found', 'text/plain')
        for prefix in ('/wx', '/wxmirror'):
            path, _, query = p.partition('?')
            m = re.fullmatch(re.escape(prefix) + r'/(extra|extra_l)\.xml', path)
            if m:
                only = urllib.parse.parse_qs(query).get('only', [''])[0]
                items = [w for w in weather if not only or w[4].startswith(tuple(only.split(',')))]
                if not only:
                    items += wx_other
                return self.conditional(wx_atom(base + prefix, m.group(1), items),
                                        '"wx-%s-%s"' % (m.group(1), only), 1481629643)
            if p.startswith(prefix + '/data/'):
                name = p.rsplit('/', 1)[1]
                for _, fname, body, _, _ in weather:
                    if fname == name:
                        return self.send(200, body)
                return self.send(404, b'not found', 'text/plain')
        if p == '/bad/eqvol.xml':
            items = [('2099', n, None, '  <entry><title>震源・震度に関する情報</title><id>@@/%s</id>'
                      '<updated>2099-01-01T00:00:00Z</updated><link type="application/xml" href="@@/%s"/>'
                      '</entry>\n' % (n, n)) for n in sorted(BAD)]
            return self.conditional(atom('bad', base + '/bad', items), '"bad"', 4070908800)
        if p.startswith('/bad/data/'):
            name = p.rsplit('/', 1)[1]
            if name not in BAD:
                return self.send(404, b'', 'text/plain')
            if BAD[name] is None:
                return self.stream_large(50 * 1024 * 1024)
            return self.send(200, BAD[name])
        port = self.server.server_address[1]
        if p == '/foreign/eqvol.xml':
            # the telegrams on another host than the feed's: the same machine
            # by name, another port, another scheme
            others = ['http://localhost:%d' % port, 'http://localhost:%d' % port,
                      'http://127.0.0.1:%d' % (port + 1 if port < 65535 else port - 1), 'https://127.0.0.1:%d' % port]
            items = [(dt, f, b, e.replace('@@', other + '/foreign/data')) for (dt, f, b, e), other in zip(osumi, others)]
            return self.conditional(atom('foreign', base + '/foreign', items), '"foreign"', 1264400000)
        if p == '/redirect/eqvol.xml':
            return self.conditional(atom('redirect', base + '/redirect', osumi), '"redirect"', 1264400000)
        if p == '/sameredir/eqvol.xml':
            return self.conditional(atom('sameredir', base + '/sameredir', osumi), '"sameredir"', 1264400000)
        if p.startswith('/redirect/data/'):
            return self.redirect('http://localhost:%d/elsewhere/data/%s' % (port, p.rsplit('/', 1)[1]))
        if p.startswith('/sameredir/data/'):
            return self.redirect('/sameredir/moved/' + p.rsplit('/', 1)[1])
        if p.startswith(('/foreign/data/', '/elsewhere/data/', '/sameredir/moved/')):
            return self.osumi_file(p.rsplit('/', 1)[1])
        if p == '/inward/p2p':
            return self.redirect('http://127.0.0.2:%d/p2p/history' % port)
        if p == '/error/eqvol.xml':
            return self.send(500, b'internal error', 'text/plain')
        if p.startswith('/p2p/history'):
            return self.send(200, read('p2pquake/history_551_20260804-05.json'), 'application/json')
        if p == '/usgs/summary.geojson':
            return self.send(200, read('usgs/summary_4.5_day_20240206.geojson'), 'application/geo+json')
        return self.send(404, b'not found', 'text/plain')

    def stream_large(self, size):
        self.count(200)
        self.send_response(200)
        self.send_header('Content-Type', 'application/xml')
        self.send_header('Content-Length', str(size))
        self.end_headers()
        chunk = b' ' * 65536
        try:
            self.wfile.write(b'<?xml version="1.0"?>')
            sent = 21
            while sent < size:
                n = min(len(chunk), size - sent)
                self.wfile.write(chunk[:n])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client gave up at its size limit: expected


server = ThreadingHTTPServer(('127.0.0.1', int(os.environ.get('FEED_PORT', '0'))), Handler)
server.daemon_threads = True
with open(PORT_FILE + '.tmp', 'w') as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + '.tmp', PORT_FILE)
server.serve_forever()
