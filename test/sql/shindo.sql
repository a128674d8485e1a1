-- shindo: the JMA seismic intensity type
SET search_path = status_checker, public;
\set SHOW_CONTEXT never

-- canonical forms round-trip
SELECT s::text AS canonical FROM unnest(ARRAY['0','1','2','3','4','5-','5+','6-','6+','7']) AS s;

-- every encoding found in feeds and in people's hands
SELECT input, input::shindo AS shindo
FROM unnest(ARRAY['5弱', '5強', '6弱', '6強', '５弱', '６強', '震度5弱', '震度７', '震度 4', '　震度５強　',
                  '5 lower', '5 UPPER', '6Lower', 'Shindo 6 Upper', 'shindo 3', '5−', '６＋',
                  '0.4', '0.5', '4.4', '4.5', '4.49', '4.45', '4.494', '4.495', '4.4949', '5.499999', '5.0', '5.3', '5.5', '6.0', '6.4', '6.5', '7.2', '-0.3']) AS input;

-- invalid input: 22P02 with the value in the message
SELECT '8'::shindo;
SELECT '5'::shindo;
SELECT '6'::shindo;
SELECT 'abc'::shindo;
SELECT ''::shindo;
SELECT '5弱弱'::shindo;
SELECT '9.5'::shindo;
SELECT '4-'::shindo;

-- order, comparison, aggregates
SELECT s FROM unnest(ARRAY['7','5+','0','6-','5-','4','6+','1']::shindo[]) s ORDER BY s;
SELECT '5-'::shindo < '5+'::shindo AS lt, '6-'::shindo > '5+'::shindo AS gt, '5弱'::shindo = '5-'::shindo AS eq,
       '4'::shindo <> '5-'::shindo AS ne, '6+'::shindo >= '6強'::shindo AS ge, '3'::shindo <= '2'::shindo AS le;
SELECT max(s), min(s) FROM unnest(ARRAY['3','6-','1','5+']::shindo[]) s;
SELECT max(s) IS NULL AS max_of_nothing_is_null FROM unnest(ARRAY[]::shindo[]) s;

-- btree and hash indexes
CREATE TEMP TABLE obs (station text, s shindo);
INSERT INTO obs SELECT 'st' || i, (ARRAY['1','2','3','4','5-','5+','6-','6+','7'])[1 + i % 9]::shindo FROM generate_series(1, 900) i;
CREATE INDEX obs_s_btree ON obs (s);
CREATE INDEX obs_s_hash ON obs USING hash (s);
ANALYZE obs;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM obs WHERE s >= '5弱';
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM obs WHERE s = '6強';
SELECT count(*) AS at_least_5_lower FROM obs WHERE s >= '5弱';
SELECT count(*) AS exactly_6_upper FROM obs WHERE s = '6強';
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT s, count(*) FROM obs GROUP BY s ORDER BY s;
SELECT count(*) AS hash_join FROM obs a JOIN obs b USING (s) WHERE a.station = 'st1';

-- labels
SELECT s, shindo_label(s) AS ja, shindo_label(s, 'en') AS en
FROM unnest(ARRAY['0','4','5-','5+','6-','6+','7']::shindo[]) s;
SELECT shindo_label('5-', 'fr');

-- P2PQuake scale codes
SELECT scale, shindo_from_p2pquake(scale) FROM unnest(ARRAY[-1, 0, 10, 20, 30, 40, 45, 46, 50, 55, 60, 70]) scale;
SELECT shindo_from_p2pquake(35);

-- instrumental intensity: JMA's class boundaries
SELECT i, shindo_from_instrumental(i), i::shindo AS via_cast
FROM unnest(ARRAY[0.4, 0.5, 1.4, 1.5, 2.5, 3.5, 4.4, 4.5, 4.9, 5.0, 5.4, 5.5, 5.9, 6.0, 6.4, 6.5, 7.0]::numeric[]) i;
-- JMA's definition of 計測震度: rounded at the third decimal, then truncated
-- at the second (4.49 is 4.4, 震度4; 4.495 rounds to 4.50, 震度5弱)
SELECT i, shindo_from_instrumental(i), i::text::shindo AS via_text
FROM unnest(ARRAY[0.494, 0.495, 4.45, 4.49, 4.494, 4.494999, 4.495, 4.999, 4.9951, 5.49, 5.495,
                  5.994, 5.995, 6.49, 6.4951, -0.005, -2.999]::numeric[]) i;
SELECT shindo_from_instrumental(9);
SELECT shindo_from_instrumental('NaN');
SELECT shindo_ordinal('5+'), shindo_ordinal('7');

-- binary output: the ordinal as int2 (6- is the 8th class, ordinal 7)
SELECT shindo_send('6-');
