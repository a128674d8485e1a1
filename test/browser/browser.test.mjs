// Browser tests of the reporter page and the dashboard, in Debian's
// headless chromium driven by playwright-core (no browser download).
// Run by test/integration/browser.sh, which starts the cluster with the
// HTTP worker, loads the data and passes what the tests need in the
// environment.  Prints TAP; screenshots go to $SC_ARTIFACTS.
//
//   - a reporter opens the link on a phone-sized screen, answers with a
//     conditional question (shown only once its condition holds), submits,
//     sees the confirmation, then updates the answer;
//   - a manager signs in, sees the tiles and the map, and sees them change
//     by themselves as reports arrive;
//   - the map over an outline of Japan, then over the tiles of a tile
//     server (a local stand-in) once one is configured;
//   - no Content-Security-Policy violation on any page, and a site name
//     that is an XSS payload stays text.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

const base = process.env.SC_BASE;
const token = process.env.SC_TOKEN;
const artifacts = process.env.SC_ARTIFACTS;
const sql = (q) => execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', process.env.SC_DB, '-c', q],
    { encoding: 'utf8' }).trim();
mkdirSync(artifacts, { recursive: true });

let n = 0;
let failed = 0;
function ok(cond, what) {
    n++;
    if (cond)
        console.log(`ok ${n} - ${what}`);
    else {
        failed++;
        console.log(`not ok ${n} - ${what}`);
    }
}
async function attempt(what, fn) {
    try {
        await fn();
    } catch (e) {
        n++;
        failed++;
        console.log(`not ok ${n} - ${what}: ${String(e.message).split('\n')[0]}`);
    }
}

console.log('1..25');
const browser = await chromium.launch({ executablePath: process.env.SC_CHROMIUM || '/usr/bin/chromium',
                                        args: ['--no-sandbox'], env: { ...process.env, TZ: 'Asia/Tokyo' } });
const cspViolations = [];
function watch(page) {
    page.on('console', (m) => {
        if (/Content[- ]Security[- ]Policy|Refused to/i.test(m.text()))
            cspViolations.push(m.text());
    });
    page.on('pageerror', (e) => cspViolations.push('page error: ' + e.message));
}

// tap "send" and wait for the confirmation page (the POST redirects to it) showing `status`
async function send(page, status) {
    await page.locator('button[type="submit"]').tap();
    await page.locator('#current', { hasText: status }).waitFor({ timeout: 15000 });
}

// ---- the reporter, on a phone
await attempt('reporter page', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2,
                                             isMobile: true, hasTouch: true, locale: 'ja-JP' });
    const page = await phone.newPage();
    watch(page);
    await page.goto(`${base}/r/${token}`);
    ok(await page.locator('h1').innerText() === '能登地震 被害報告', 'the reporter page shows the request');
    ok(await page.locator('#q-detail').isHidden(), 'the conditional question is hidden while its condition does not hold');
    await page.screenshot({ path: `${artifacts}/reporter-1-open.png`, fullPage: true });
    await page.locator('input[name="q.building"][value="partial"]').check();
    ok(await page.locator('#q-detail').isVisible(), 'choosing 一部損壊 shows it');
    await page.locator('textarea[name="q.detail"]').fill('倉庫の壁にひび');
    await page.locator('input[name="q.injured"]').fill('0');
    await page.locator('input[name="q.operation"][value="limited"]').check();
    await page.locator('input[name="q.lifelines"][value="water"]').check();
    await page.screenshot({ path: `${artifacts}/reporter-2-filled.png`, fullPage: true });
    await page.screenshot({ path: `${artifacts}/readme-reporter.png` });   // the phone's screen, for the README
    await send(page, '一部被害');
    ok(await page.locator('#received').isVisible(), 'after sending, the confirmation is shown');
    ok((await page.locator('#current').innerText()).includes('一部被害'), '... with the site\'s new status');
    await page.screenshot({ path: `${artifacts}/reporter-3-received.png`, fullPage: true });
    ok(sql(`SELECT answers->>'detail' || '|' || level FROM status_checker.report ORDER BY report_id DESC LIMIT 1`)
       === '倉庫の壁にひび|1', 'the report is stored as answered');

    // the site comes back: no damage after all
    await page.locator('input[name="q.building"][value="none"]').check();
    ok(await page.locator('#q-detail').isHidden(), 'updating: choosing なし hides the conditional question again');
    await page.locator('input[name="q.operation"][value="normal"]').check();
    await page.locator('input[name="q.lifelines"][value="water"]').uncheck();
    await send(page, '被害なし');
    ok((await page.locator('#current').innerText()).includes('被害なし'), 'the update is confirmed with the new status');
    ok(sql(`SELECT count(*) || '|' || (SELECT answers ? 'detail' FROM status_checker.report ORDER BY report_id DESC LIMIT 1)
            FROM status_checker.report WHERE site_id = (SELECT site_id FROM status_checker.site WHERE code = 'NOTO1')`)
       === '2|false', 'two reports kept; the hidden question\'s answer was not sent');
    await page.screenshot({ path: `${artifacts}/reporter-4-updated.png`, fullPage: true });
    await page.goBack();
    ok(sql(`SELECT count(*) FROM status_checker.report WHERE site_id = (SELECT site_id FROM status_checker.site WHERE code = 'NOTO1')`)
       === '2', 'going back stores nothing (the confirmation was a redirect)');
    await phone.close();
});

// ---- the manager, on a desk
await attempt('dashboard', async () => {
    const desk = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'ja-JP' });
    const page = await desk.newPage();
    watch(page);
    await page.goto(`${base}/d/`);
    ok(page.url().endsWith('/d/login'), 'the dashboard asks to sign in first');
    await page.locator('input[name="tenant"]').fill(process.env.SC_TENANT);
    await page.locator('input[name="login"]').fill('kanri');
    await page.locator('input[name="password"]').fill('wrong password here');
    await page.locator('button[type="submit"]').click();
    ok(await page.locator('#login-error').isVisible(), 'a wrong password is refused with a message');
    // every failed sign-in gets the very same page: the organisation ID is filled in again, the login is not
    ok(await page.locator('input[name="tenant"]').inputValue() === process.env.SC_TENANT &&
       await page.locator('input[name="login"]').inputValue() === '', '... with the organisation ID kept and the login not');
    await page.locator('input[name="login"]').fill('kanri');
    await page.locator('input[name="password"]').fill(process.env.SC_PASSWORD);
    await page.locator('button[type="submit"]').click();
    await page.locator('#requests a').first().waitFor();
    const cookies = await desk.cookies();
    const session = cookies.find((c) => c.name === 'sc_session');
    ok(session && session.httpOnly && session.secure && session.sameSite === 'Strict',
       'the session cookie is HttpOnly, Secure and SameSite=Strict');
    await page.locator('#requests a', { hasText: '能登地震' }).click();
    await page.locator('#tile-rate').waitFor();
    const noneBefore = Number(await page.locator('#tile-none .n').innerText());
    const mapNoneBefore = await page.locator('#map circle[data-level="none"]').count();
    ok(noneBefore === mapNoneBefore && noneBefore > 5, `tiles and map agree: ${noneBefore} sites without an answer`);
    ok(await page.locator('#matrix tbody tr').count() === Number(sql('SELECT count(*) FROM status_checker.request_target WHERE request_id = 1')),
       'the status matrix lists every site');
    ok(await page.evaluate(() => window.__xss) === undefined &&
       (await page.locator('#matrix').innerText()).includes('<img src=x onerror='), 'a site named like an XSS payload is shown as text');
    await page.screenshot({ path: `${artifacts}/dashboard-1-before.png`, fullPage: true });

    // five sites answer (severe damage) while the manager watches
    sql(`SELECT count(status_checker.submit_report_for(1, code, '{"building": "severe", "detail": "倒壊", "injured": 1, "operation": "stopped"}'))
         FROM (SELECT s.site_code AS code FROM status_checker.site_status s WHERE s.request_id = 1 AND s.level IS NULL ORDER BY s.site_code LIMIT 5) x`);
    const changed = await page.waitForFunction((want) => Number(document.querySelector('#tile-none .n').textContent) === want,
                                               noneBefore - 5, { timeout: 30000 }).then(() => true, () => false);
    ok(changed, 'the tiles change by themselves as reports arrive (no reload)');
    ok(await page.locator('#map circle[data-level="none"]').count() === mapNoneBefore - 5 &&
       await page.locator('#map circle[data-level="2"]').count() >= 5, '... and so does the map');
    await page.locator('#filter').selectOption('none');
    ok(await page.locator('#matrix tbody tr').count() === noneBefore - 5, 'the matrix filter shows only the sites without an answer');
    await page.locator('#filter').selectOption('all');
    await page.goto(`${base}/d/r/${process.env.SC_OTHER_REQUEST}`);
    await page.locator('#not-found').waitFor();
    ok(await page.locator('#map').count() === 0, 'another tenant\'s request, by its URL: "there is no such request", nothing of it shown');
    await page.goBack();
    await page.locator('#tile-rate').waitFor();
    await page.screenshot({ path: `${artifacts}/dashboard-2-after.png`, fullPage: true });
    await page.screenshot({ path: `${artifacts}/readme-dashboard.png` });  // the first screen, for the README
    ok(await page.locator('#map polygon.land').count() > 0 && await page.locator('#map image').count() === 0,
       'without a tile server the map is drawn over the outline of Japan');

    // a tile server configured (SIGHUP): the map is drawn over its tiles
    sql(`ALTER SYSTEM SET status_checker.http_map_tiles = '${process.env.SC_TILES}'`);
    sql(`ALTER SYSTEM SET status_checker.http_map_attribution = '© テスト地図'`);
    sql('SELECT pg_reload_conf()');
    for (let i = 0; i < 50 && !(await page.locator('#app[data-tiles]').count()); i++) {
        await page.waitForTimeout(200);
        await page.reload();
    }
    await page.locator('#map image').first().waitFor();
    await page.waitForLoadState('networkidle');
    const tileLog = readFileSync(process.env.SC_TILE_LOG, 'utf8').trim().split('\n').filter((l) => l);
    ok(await page.locator('#map image').count() === tileLog.length && tileLog.every((l) => /^\/tiles\/\d+\/\d+\/\d+\.png$/.test(l)),
       `with status_checker.http_map_tiles the map shows the tile server's tiles (${tileLog.length} fetched)`);
    ok((await page.locator('.attribution').innerText()) === '© テスト地図', '... with their attribution');
    await page.screenshot({ path: `${artifacts}/dashboard-3-tiles.png` });
    sql('ALTER SYSTEM RESET status_checker.http_map_tiles');
    sql('ALTER SYSTEM RESET status_checker.http_map_attribution');
    sql('SELECT pg_reload_conf()');
    await desk.close();
});

ok(cspViolations.length === 0, `no Content-Security-Policy violation or script error (${cspViolations.join('; ')})`);
await browser.close();
process.exit(failed ? 1 : 0);
