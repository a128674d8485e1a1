/*
 * dashboard.js — the crisis dashboard (served by src/web/dashboard.c).
 *
 * Two pages: the tenant's requests (/d/), and one request (/d/r/<id>):
 * tiles in the form's colours, a map of the sites coloured by status over
 * a simple outline of Japan (no tile server needed; map tiles where
 * status_checker.http_map_tiles names a tile server), the response
 * timeline, the group roll-up and the status matrix with its filters.  The
 * data comes from /d/api/…; the page polls it every 5 seconds with
 * If-None-Match, so an unchanged request costs a 304 and no redraw.
 *
 * Every string from the server is put into the page with textContent or
 * as an attribute value, never as HTML: a site named "<script>" stays text.
 */
(function () {
	'use strict';

	var app = document.getElementById('app');
	if (!app)
		return;
	var lang = app.getAttribute('data-lang') === 'en' ? 'en' : 'ja';
	var POLL_MS = 5000;
	var SVG = 'http://www.w3.org/2000/svg';

	var WORDS = {
		ja: {
			requests: '依頼の一覧', title: '件名', state: '状態', created: '作成', responded: '回答',
			worst: '最悪の状況', open: '受付中', closed: '締切', cancelled: '取消', none: '—',
			rate: '回答率', noAnswer: '未回答', map: '拠点の地図', timeline: '回答の推移',
			groups: 'グループ別', matrix: '拠点の状況', site: '拠点', group: 'グループ', status: '状況',
			shindo: '震度', reported: '最終報告', reports: '報告数', all: 'すべて', answered: '回答済み',
			sortWorst: '状況の悪い順', sortShaken: '揺れの大きい順', sortCode: 'コード順', allGroups: 'すべてのグループ',
			csv: 'CSV ダウンロード', geojson: 'GeoJSON', updated: '更新', deadline: '期限', targets: '対象',
			shown: '件を表示', back: '← 依頼の一覧', noRequests: '依頼はまだありません。', failed: 'データを取得できません。再試行します…',
			drill: '訓練', late: '期限後', notFound: 'この依頼はありません。'
		},
		en: {
			requests: 'Requests', title: 'Title', state: 'State', created: 'Created', responded: 'Answered',
			worst: 'Worst', open: 'open', closed: 'closed', cancelled: 'cancelled', none: '—',
			rate: 'Response rate', noAnswer: 'No answer', map: 'Sites', timeline: 'Answers over time',
			groups: 'By group', matrix: 'Status of the sites', site: 'Site', group: 'Group', status: 'Status',
			shindo: 'Intensity', reported: 'Last report', reports: 'Reports', all: 'All', answered: 'Answered',
			sortWorst: 'Worst first', sortShaken: 'Most shaken first', sortCode: 'By code', allGroups: 'All groups',
			csv: 'Download CSV', geojson: 'GeoJSON', updated: 'Updated', deadline: 'Deadline', targets: 'targets',
			shown: 'shown', back: '← Requests', noRequests: 'No requests yet.', failed: 'Cannot fetch the data; retrying…',
			drill: 'Drill', late: 'late', notFound: 'There is no such request.'
		}
	}[lang];

	var SHINDO = {
		'0': ['震度0', 'Shindo 0'], '1': ['震度1', 'Shindo 1'], '2': ['震度2', 'Shindo 2'], '3': ['震度3', 'Shindo 3'],
		'4': ['震度4', 'Shindo 4'], '5-': ['震度5弱', 'Shindo 5 Lower'], '5+': ['震度5強', 'Shindo 5 Upper'],
		'6-': ['震度6弱', 'Shindo 6 Lower'], '6+': ['震度6強', 'Shindo 6 Upper'], '7': ['震度7', 'Shindo 7']
	};
	var ICONS = { check: '✓', alert: '!', stop: '✕', help: '?', 'home-x': '⌂', warning: '!', fire: '▲', water: '≈' };

	/* A simple outline of Japan's main islands (coarse, lon/lat), drawn under the sites. */
	var OUTLINE = [
		[[141.94,45.52],[142.5,44.9],[143.3,44.3],[144.3,44.0],[145.35,44.35],[145.1,43.7],[145.8,43.4],[145.0,43.0],
		 [144.0,42.95],[143.25,41.93],[142.5,42.25],[141.7,42.6],[141.0,42.3],[140.95,41.75],[140.73,41.77],[140.1,41.4],
		 [139.95,41.6],[140.1,42.2],[139.85,42.6],[140.45,43.35],[141.3,43.2],[141.45,43.8],[141.65,44.4],[141.8,45.2]],
		[[140.91,41.53],[141.46,41.43],[141.5,40.5],[142.07,39.55],[141.6,38.95],[141.5,38.3],[141.0,38.2],[140.9,36.9],
		 [140.6,36.3],[140.85,35.72],[140.4,35.2],[139.85,34.9],[139.8,35.6],[139.6,35.25],[139.1,35.3],[138.85,34.6],
		 [138.4,34.95],[137.9,34.65],[137.0,34.6],[136.9,35.05],[136.85,34.5],[136.9,34.3],[136.2,33.9],[135.77,33.43],
		 [135.1,33.9],[135.2,34.3],[135.4,34.65],[134.7,34.8],[133.9,34.5],[133.0,34.3],[132.45,34.35],[132.0,34.0],
		 [130.9,33.95],[130.9,34.3],[131.5,34.6],[132.1,35.0],[132.65,35.45],[133.3,35.55],[134.2,35.55],[135.2,35.65],
		 [136.05,35.65],[136.15,36.25],[136.62,36.6],[136.75,37.1],[136.75,37.35],[137.35,37.52],[137.0,37.05],
		 [137.2,36.75],[137.6,36.95],[138.25,37.2],[139.0,37.95],[139.55,38.55],[139.85,39.0],[139.7,39.95],
		 [140.0,40.6],[139.85,40.6],[140.35,41.25],[140.75,40.9]],
		[[133.0,34.1],[133.65,34.2],[134.05,34.35],[134.6,34.2],[134.75,33.85],[134.18,33.25],[133.55,33.5],[133.0,32.73],
		 [132.5,33.0],[132.0,33.34],[132.7,33.85]],
		[[130.9,33.95],[131.2,33.6],[131.7,33.55],[131.9,32.9],[131.45,31.9],[131.3,31.4],[131.05,31.0],[130.66,31.0],
		 [130.7,31.6],[130.2,31.25],[130.2,31.8],[130.2,32.3],[130.6,32.6],[130.35,32.75],[129.85,32.75],[129.6,33.2],
		 [130.0,33.45],[130.4,33.6]],
		[[127.65,26.1],[127.85,26.45],[128.3,26.85],[128.1,26.6],[127.75,26.2]]
	];

	function el(tag, attrs, children) {
		var e = document.createElement(tag);
		for (var k in attrs || {}) {
			if (k === 'text')
				e.textContent = attrs[k];
			else if (k === 'bg')
				e.style.backgroundColor = safeColor(attrs[k]);
			else if (attrs[k] !== null && attrs[k] !== undefined)
				e.setAttribute(k, attrs[k]);
		}
		(children || []).forEach(function (c) {
			if (c !== null && c !== undefined)
				e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
		});
		return e;
	}
	function svg(tag, attrs, children) {
		var e = document.createElementNS(SVG, tag);
		for (var k in attrs || {})
			if (k === 'text')
				e.textContent = attrs[k];
			else
				e.setAttribute(k, attrs[k]);
		(children || []).forEach(function (c) { if (c) e.appendChild(c); });
		return e;
	}
	function safeColor(c) { return /^#[0-9a-fA-F]{6}$/.test(c || '') ? c : '#9e9e9e'; }
	function label(l) { return l ? (l[lang] || l[lang === 'ja' ? 'en' : 'ja'] || '') : ''; }
	function shindo(s) { return s && SHINDO[s] ? SHINDO[s][lang === 'ja' ? 0 : 1] : ''; }
	function pct(x) { return Math.round((Number(x) || 0) * 100) + '%'; }
	function time(iso) {
		if (!iso)
			return '';
		var d = new Date(iso);
		return lang === 'ja'
			? (d.getMonth() + 1) + '/' + d.getDate() + ' ' + d.toTimeString().slice(0, 5)
			: d.toISOString().slice(0, 10) + ' ' + d.toTimeString().slice(0, 5);
	}
	function stateWord(s) { return WORDS[s] || s; }

	/* GET a JSON document; 304 keeps the last one; 401 goes to the sign-in page */
	var etags = {};
	var timer = null;	/* the polling, stopped when there is nothing to show */
	function fetchJSON(url, onData, onFail) {
		var headers = {};
		if (etags[url])
			headers['If-None-Match'] = etags[url];
		fetch(url, { credentials: 'same-origin', headers: headers, cache: 'no-store' }).then(function (r) {
			if (r.status === 401) {
				location.href = '/d/login';
				return null;
			}
			if (r.status === 304)
				return null;
			if (r.status === 404) {
				/* not a request of this tenant (or no longer there) */
				clearInterval(timer);
				app.textContent = '';
				app.appendChild(el('p', {}, [el('a', { href: '/d/?lang=' + lang, text: WORDS.back })]));
				app.appendChild(el('p', { 'class': 'banner bad', id: 'not-found', text: WORDS.notFound }));
				return null;
			}
			if (!r.ok)
				throw new Error('HTTP ' + r.status);
			etags[url] = r.headers.get('ETag');
			return r.json();
		}).then(function (data) {
			if (data)
				onData(data);
		}).catch(function () { if (onFail) onFail(); });
	}

	/* ------------------------------------------------------------ requests */

	function listPage() {
		fetchJSON('/d/api/requests', function (rows) {
			var body = el('tbody', {}, rows.map(function (r) {
				return el('tr', {}, [
					el('td', {}, [r.drill ? el('span', { 'class': 'drill', text: WORDS.drill }) : null,
						el('a', { href: '/d/r/' + r.id + '?lang=' + lang, text: r.title })]),
					el('td', { text: stateWord(r.state) }),
					el('td', { text: time(r.created_at) }),
					el('td', { 'class': 'num', text: r.responded + ' / ' + r.targets + ' (' + pct(r.response_rate) + ')' }),
					el('td', {}, [r.worst_level === null ? el('span', { text: WORDS.none })
						: el('span', { 'class': 'chip', bg: r.worst_color, text: String(r.worst_level) })])
				]);
			}));
			app.textContent = '';
			app.appendChild(el('h1', { text: WORDS.requests }));
			app.appendChild(rows.length === 0 ? el('p', { text: WORDS.noRequests }) : el('div', { 'class': 'card' }, [
				el('table', { id: 'requests' }, [el('thead', {}, [el('tr', {}, [WORDS.title, WORDS.state, WORDS.created,
					WORDS.responded, WORDS.worst].map(function (h) { return el('th', { text: h }); }))]), body])]));
		}, function () { app.textContent = WORDS.failed; });
	}

	/* ------------------------------------------------------- one request */

	var rid = app.getAttribute('data-request');
	var view = { filter: 'all', sort: 'worst', group: '' };
	var last = null;

	function tiles(d) {
		var q = d.request;
		var out = [el('div', { 'class': 'tile', id: 'tile-rate', bg: '#1565c0' }, [
			el('div', { 'class': 'l', text: WORDS.rate }),
			el('div', { 'class': 'n', text: pct(q.response_rate) }),
			el('div', { text: q.responded + ' / ' + q.targets })])];
		(d.levels || []).forEach(function (l) {
			out.push(el('div', { 'class': 'tile', id: 'tile-level-' + l.level, bg: l.color }, [
				el('span', { 'class': 'i', text: ICONS[l.icon] || '●' }),
				el('div', { 'class': 'l', text: label(l.label) }),
				el('div', { 'class': 'n', text: String(q.level_counts[String(l.level)] || 0) })]));
		});
		out.push(el('div', { 'class': 'tile', id: 'tile-none', bg: d.no_answer.color }, [
			el('span', { 'class': 'i', text: ICONS[d.no_answer.icon] || '?' }),
			el('div', { 'class': 'l', text: WORDS.noAnswer }),
			el('div', { 'class': 'n', text: String(q.level_counts.none || 0) })]));
		return el('div', { 'class': 'tiles' }, out);
	}

	/* Web Mercator at zoom z, in pixels of the whole world (as map tiles are cut) */
	function mercX(lon, z) { return (lon + 180) / 360 * 256 * Math.pow(2, z); }
	function mercY(lat, z) {
		var s = Math.sin(Math.max(Math.min(lat, 85), -85) * Math.PI / 180);
		return (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * 256 * Math.pow(2, z);
	}

	function map(d) {
		var tiles = app.getAttribute('data-tiles');
		var pts = d.sites.filter(function (s) { return s.lat !== null && s.lon !== null; });
		var minLon = 128, maxLon = 146, minLat = 30, maxLat = 46;
		if (pts.length) {
			minLon = Math.min.apply(null, pts.map(function (s) { return s.lon; }));
			maxLon = Math.max.apply(null, pts.map(function (s) { return s.lon; }));
			minLat = Math.min.apply(null, pts.map(function (s) { return s.lat; }));
			maxLat = Math.max.apply(null, pts.map(function (s) { return s.lat; }));
		}
		var padLon = Math.max((maxLon - minLon) * 0.15, 0.75), padLat = Math.max((maxLat - minLat) * 0.15, 0.6);
		minLon -= padLon; maxLon += padLon; minLat -= padLat; maxLat += padLat;
		/* the zoom at which the area is about 600 pixels wide (and not too tall) */
		var z = 0;
		while (z < 14 && mercX(maxLon, z + 1) - mercX(minLon, z + 1) <= 640 && mercY(minLat, z + 1) - mercY(maxLat, z + 1) <= 720)
			z++;
		var x0 = mercX(minLon, z), y0 = mercY(maxLat, z);
		var W = Math.round(mercX(maxLon, z) - x0), H = Math.round(mercY(minLat, z) - y0);
		function x(lon) { return (mercX(lon, z) - x0).toFixed(1); }
		function y(lat) { return (mercY(lat, z) - y0).toFixed(1); }
		var g = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, id: 'map', role: 'img', 'aria-label': WORDS.map });
		if (tiles) {
			/* the tiles that cover the area, from the configured tile server */
			var n = Math.pow(2, z);
			for (var tx = Math.floor(x0 / 256); tx <= Math.floor((x0 + W) / 256); tx++)
				for (var ty = Math.max(Math.floor(y0 / 256), 0); ty <= Math.min(Math.floor((y0 + H) / 256), n - 1); ty++)
					g.appendChild(svg('image', {
						href: tiles.replace('{z}', z).replace('{x}', ((tx % n) + n) % n).replace('{y}', ty),
						x: tx * 256 - x0, y: ty * 256 - y0, width: 256, height: 256, 'class': 'tile'
					}));
		} else
			OUTLINE.forEach(function (poly) {
				g.appendChild(svg('polygon', { 'class': 'land', points: poly.map(function (p) { return x(p[0]) + ',' + y(p[1]); }).join(' ') }));
			});
		/* unanswered first, so that answers are drawn on top */
		pts.slice().sort(function (a, b) { return (a.level === null ? -1 : a.level) - (b.level === null ? -1 : b.level); })
			.forEach(function (s) {
				g.appendChild(svg('circle', {
					'class': 'site', cx: x(s.lon), cy: y(s.lat), r: s.level === null ? 4 : 5.5,
					fill: safeColor(s.color), 'data-code': s.code, 'data-level': s.level === null ? 'none' : String(s.level)
				}, [svg('title', { text: s.name + ' (' + s.code + '): ' + (s.level === null ? WORDS.noAnswer : label(s.label)) +
					(s.shindo ? ' · ' + shindo(s.shindo) : '') })]));
			});
		var legend = el('div', { 'class': 'legend' }, (d.levels || []).map(function (l) {
			return el('span', {}, [el('i', { bg: l.color }), label(l.label)]);
		}).concat([el('span', {}, [el('i', { bg: d.no_answer.color }), WORDS.noAnswer])]));
		return el('div', { 'class': 'card' }, [el('h2', { text: WORDS.map }), g, legend,
			tiles ? el('p', { 'class': 'attribution', text: app.getAttribute('data-attribution') || '' }) : null]);
	}

	function timeline(d) {
		var q = d.request, t = d.timeline || [];
		var W = 600, H = 220, L = 40, B = 24;
		var t0 = new Date(q.created_at).getTime();
		var t1 = Math.max(Date.now(), t.length ? new Date(t[t.length - 1].minute).getTime() + 60000 : t0 + 60000);
		var maxY = Math.max(q.targets, 1);
		function x(ms) { return (L + (ms - t0) / Math.max(t1 - t0, 1) * (W - L - 8)).toFixed(1); }
		function y(n) { return (8 + (1 - n / maxY) * (H - B - 8)).toFixed(1); }
		var pts = [[x(t0), y(0)]], prev = 0;
		t.forEach(function (m) {
			var ms = Math.max(new Date(m.minute).getTime(), t0);
			pts.push([x(ms), y(prev)]);
			pts.push([x(ms), y(m.responded)]);
			prev = m.responded;
		});
		pts.push([x(t1), y(prev)]);
		var line = pts.map(function (p) { return p[0] + ',' + p[1]; }).join(' ');
		var g = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, id: 'timeline', role: 'img', 'aria-label': WORDS.timeline }, [
			svg('polygon', { 'class': 'area', points: line + ' ' + x(t1) + ',' + y(0) + ' ' + x(t0) + ',' + y(0) }),
			svg('polyline', { 'class': 'line', points: line }),
			svg('path', { 'class': 'axis', d: 'M' + L + ',8 V' + y(0) + ' H' + (W - 8) }),
			svg('text', { x: 2, y: 14, text: String(maxY) }),
			svg('text', { x: 2, y: y(0), text: '0' }),
			svg('text', { x: L, y: H - 6, text: time(q.created_at) }),
			svg('text', { x: W - 90, y: H - 6, text: time(new Date(t1).toISOString()) })
		]);
		return el('div', { 'class': 'card' }, [el('h2', { text: WORDS.timeline + ' — ' + q.responded + ' / ' + q.targets }), g]);
	}

	function levelLabel(d, level) {
		var l = (d.levels || []).filter(function (x) { return x.level === level; })[0];
		return level === null ? WORDS.noAnswer : l ? label(l.label) : String(level);
	}

	function groups(d) {
		if (!d.groups.length)
			return null;
		return el('div', { 'class': 'card' }, [el('h2', { text: WORDS.groups }), el('table', { id: 'groups' }, [
			el('thead', {}, [el('tr', {}, [WORDS.group, WORDS.responded, WORDS.rate, WORDS.worst].map(function (h) {
				return el('th', { text: h }); }))]),
			el('tbody', {}, d.groups.map(function (g) {
				var name = g.path.split('/').pop();
				var bar = el('span', { 'class': 'bar' }, [el('i')]);
				bar.firstChild.style.width = pct(g.responded / Math.max(g.targets, 1));
				return el('tr', {}, [
					el('td', { text: '\u3000'.repeat(g.path.split('/').length - 1) + name, title: g.path }),
					el('td', { 'class': 'num', text: g.responded + ' / ' + g.targets }),
					el('td', {}, [bar, ' ' + pct(g.responded / Math.max(g.targets, 1))]),
					el('td', {}, [el('span', { 'class': 'chip', bg: g.color, text: levelLabel(d, g.worst_level) })])
				]);
			}))])]);
	}

	function matrix(d) {
		var rows = d.sites.filter(function (s) {
			if (view.filter === 'none' && s.level !== null) return false;
			if (view.filter === 'answered' && s.level === null) return false;
			if (view.group && !(s.group === view.group || (s.group || '').indexOf(view.group + '/') === 0)) return false;
			return true;
		});
		var byShaking = function (a, b) { return (b.shindo_rank === null ? -1 : b.shindo_rank) - (a.shindo_rank === null ? -1 : a.shindo_rank); };
		if (view.sort === 'shaken')
			rows.sort(function (a, b) { return byShaking(a, b) || a.code.localeCompare(b.code); });
		else if (view.sort === 'code')
			rows.sort(function (a, b) { return a.code.localeCompare(b.code); });
		else
			rows.sort(function (a, b) {
				var la = a.level === null ? -1 : a.level, lb = b.level === null ? -1 : b.level;
				return lb - la || byShaking(a, b) || a.code.localeCompare(b.code);
			});
		function select(id, key, options) {
			var s = el('select', { id: id }, options.map(function (o) {
				var opt = el('option', { value: o[0], text: o[1] });
				if (view[key] === o[0]) opt.selected = true;
				return opt;
			}));
			s.addEventListener('change', function () { view[key] = s.value; render(last); });
			return s;
		}
		var groupNames = [['', WORDS.allGroups]].concat(d.groups.map(function (g) { return [g.path, g.path]; }));
		var shown = rows.slice(0, 2000);
		return el('div', { 'class': 'card' }, [
			el('h2', { text: WORDS.matrix }),
			el('div', { 'class': 'controls' }, [
				select('filter', 'filter', [['all', WORDS.all], ['none', WORDS.noAnswer], ['answered', WORDS.answered]]),
				select('sort', 'sort', [['worst', WORDS.sortWorst], ['shaken', WORDS.sortShaken], ['code', WORDS.sortCode]]),
				select('group', 'group', groupNames),
				el('span', { id: 'matrix-count', text: shown.length + ' / ' + d.sites.length + ' ' + WORDS.shown }),
				el('a', { 'class': 'button', href: '/d/r/' + rid + '/status.csv', download: '', text: WORDS.csv }),
				el('a', { 'class': 'button', href: '/d/api/r/' + rid + '/geojson', text: WORDS.geojson })
			]),
			el('table', { id: 'matrix' }, [
				el('thead', {}, [el('tr', {}, [WORDS.site, WORDS.group, WORDS.status, WORDS.shindo, WORDS.reported, WORDS.reports]
					.map(function (h) { return el('th', { text: h }); }))]),
				el('tbody', {}, shown.map(function (s) {
					return el('tr', { 'data-code': s.code }, [
						el('td', { text: s.code + ' ' + s.name }),
						el('td', { text: s.group || '' }),
						el('td', {}, [el('span', { 'class': 'chip', bg: s.color,
							text: s.level === null ? WORDS.noAnswer : label(s.label) + (s.late ? ' (' + WORDS.late + ')' : '') })]),
						el('td', { text: shindo(s.shindo) }),
						el('td', { text: time(s.reported_at) }),
						el('td', { 'class': 'num', text: String(s.reports) })
					]);
				}))])]);
	}

	function render(d) {
		var q = d.request;
		last = d;
		var head = [
			el('p', {}, [el('a', { href: '/d/?lang=' + lang, text: WORDS.back })]),
			el('h1', { id: 'title' }, [q.drill ? el('span', { 'class': 'drill', text: WORDS.drill }) : null, q.title]),
			el('p', { 'class': 'meta' }, [
				q.event ? el('span', { text: q.event.summary }) : null,
				el('span', { text: stateWord(q.state) }),
				el('span', { text: WORDS.deadline + ' ' + time(q.deadline) }),
				el('span', { 'class': 'updated', id: 'updated', text: WORDS.updated + ' ' + new Date().toTimeString().slice(0, 8) })])
		];
		app.textContent = '';
		head.forEach(function (h) { app.appendChild(h); });
		app.appendChild(tiles(d));
		app.appendChild(el('div', { 'class': 'grid' }, [map(d), el('div', {}, [timeline(d), groups(d)])]));
		app.appendChild(matrix(d));
	}

	function poll() {
		if (!document.hidden)
			fetchJSON('/d/api/r/' + rid, render, function () {
				var u = document.getElementById('updated');
				if (u)
					u.textContent = WORDS.failed;
			});
	}

	if (app.getAttribute('data-page') === 'request') {
		timer = setInterval(poll, POLL_MS);
		poll();
	} else {
		timer = setInterval(listPage, POLL_MS * 6);
		listPage();
	}
})();
