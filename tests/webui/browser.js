// Drives aiload's web UI in Debian's chromium (headless) with playwright-core.
//   node browser.js live   UI_URL TARGET_HOST ARTIFACT_DIR
//   node browser.js report REPORT_FILE ARTIFACT_DIR
//   node browser.js auth   UI_URL TARGET_HOST USER:PASS (a UI started with --web-auth)
//   node browser.js pyfile UI_URL TARGET_HOST (a UI running tests/loadgen/pyfiles/webui.py)
//   node browser.js shape  UI_URL (a UI running tests/loadgen/pyfiles/shape.py, its host set)
// Prints one JSON line of observations; exits non-zero with a message on failure.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function browser(opts) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aiload-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, Object.assign({
    executablePath: '/usr/bin/chromium', headless: true, args: ARGS, acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  }, opts || {}));
  const close = ctx.close.bind(ctx);
  ctx.close = async () => {
    await close();
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch (e) { /* a leftover temp profile is harmless */ }
  };
  return ctx;
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function until(page, fn, arg, what, timeout) {
  try {
    await page.waitForFunction(fn, arg, { timeout: timeout || 15000, polling: 100 });
  } catch (e) {
    throw new Error('timed out waiting for ' + what);
  }
}

const num = (s) => parseFloat(String(s).replace(/,/g, ''));

// A page of a fresh browser that records page errors and every request to
// anywhere but base.
async function openPage(base) {
  const ctx = await browser();
  const page = ctx.pages()[0] || await ctx.newPage();
  const foreign = [];
  const errors = [];
  page.on('request', (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return { ctx, page, foreign, errors };
}

// Runs body(page, out) on a fresh page; out gains the page's errors and its
// requests to anywhere but base, and the browser closes whatever happens.
async function onPage(base, body) {
  const { ctx, page, foreign, errors } = await openPage(base);
  const out = {};
  try {
    await body(page, out);
  } finally {
    out.page_errors = errors;
    out.foreign_requests = foreign;
    await ctx.close();
  }
  return out;
}

// Opens the UI at base, waits for its first poll, and starts a test of users
// at 20/s against host with no run time from the start form; returns the
// state shown before the start.
async function startTest(page, base, users, host) {
  await page.goto(base + '/');
  await until(page, () => document.querySelector('#g-state').textContent !== '-', null, 'the first poll');
  const state = await page.textContent('#g-state');
  if (await page.isVisible('#btn-new')) await page.click('#btn-new');
  await page.waitForSelector('#start-form', { state: 'visible' });
  await page.fill('#f-users', String(users));
  await page.fill('#f-rate', '20');
  await page.fill('#f-host', host);
  await page.fill('#f-runtime', '');
  await page.click('#btn-submit');
  await until(page, () => ['running', 'spawning'].includes(document.querySelector('#g-state').textContent),
    null, 'the state to become running');
  return state;
}

async function live(base, target, art) {
  const { ctx, page, foreign, errors } = await openPage(base);
  const out = {};
  try {
    out.initial_state = await startTest(page, base, 4, target);
    check(await page.isHidden('#start'), 'the start form closes once the test runs');

    // statistics table: a /hello row that counts requests, header RPS > 0
    await until(page, () => {
      const rows = [...document.querySelectorAll('#stats-table tbody tr')];
      const r = rows.find((tr) => tr.children[1].textContent === '/hello');
      return r && parseFloat(r.children[2].textContent.replace(/,/g, '')) > 0;
    }, null, 'the statistics table to count /hello requests');
    await until(page, () => parseFloat(document.querySelector('#g-rps').textContent) > 0, null,
      'the header RPS to go above 0');
    out.rps = num(await page.textContent('#g-rps'));
    out.host_shown = await page.textContent('#g-host');
    const agg = await page.$$eval('#stats-table tfoot td', (tds) => tds.map((t) => t.textContent));
    check(agg[1] === 'Aggregated', 'the Aggregated row closes the table');
    out.columns = await page.$$eval('#stats-table thead th', (ths) => ths.map((t) => t.textContent));

    // charts: three uPlot charts whose point count grows every second, without a reload
    await page.click('button[data-tab=charts]');
    check(await page.$$eval('#tab-charts canvas', (c) => c.length) === 3, 'three chart canvases');
    const p0 = Number(await page.getAttribute('#chart-rps', 'data-points'));
    await until(page, (p) => Number(document.querySelector('#chart-rps').dataset.points) >= p + 2,
      p0, 'the charts to gain points');
    out.points_before = p0;
    out.points_after = Number(await page.getAttribute('#chart-rps', 'data-points'));
    out.chart_rps_max = await page.evaluate(() => Math.max(...window.ailoadUi.hist.rps));
    check(out.chart_rps_max > 0, 'the RPS chart shows traffic');
    const legend = await page.$$eval('#chart-rt .u-legend .u-series th, #chart-rt .u-legend .u-label',
      (ls) => ls.map((l) => l.textContent));
    out.rt_legend = legend;
    fs.mkdirSync(art, { recursive: true });
    await page.screenshot({ path: path.join(art, 'webui-charts.png'), fullPage: true });

    // edit while running: 4 -> 7 users
    await page.click('#btn-edit');
    await page.waitForSelector('#start-form', { state: 'visible' });
    check(await page.isHidden('#f-host'), 'the edit form only changes users and spawn rate');
    await page.fill('#f-users', '7');
    await page.click('#btn-submit');
    await until(page, () => document.querySelector('#g-users').textContent === '7', null,
      'the user count to reach 7 after the edit');
    out.users_after_edit = 7;

    // current ratio (GET /tasks): per-class and total nested lists with percentages, also on a phone
    await page.click('button[data-tab=ratios]');
    await until(page, () => document.querySelectorAll('#ratio-total li li').length >= 2, null,
      'the current ratio lists');
    out.ratios = await page.$$eval('#tab-ratios .ratio-list', (uls) => uls.map((ul) =>
      [...ul.querySelectorAll('li')].map((li) => {
        let depth = 0;
        for (let e = li.parentElement; e && !e.classList.contains('ratio-list'); e = e.parentElement) {
          if (e.tagName === 'UL') depth++;
        }
        const part = (c) => li.querySelector(':scope > .' + c).textContent;
        return '  '.repeat(depth) + part('pct') + ' ' + part('rname');
      })));
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(200);
    out.ratio_phone_overflow = await page.evaluate(() =>
      document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: path.join(art, 'webui-ratio-phone.png') });
    await page.setViewportSize({ width: 1280, height: 900 });

    // the statistics tab, as a laptop screenshot: the table fits 1280 px without scrolling
    await page.click('button[data-tab=stats]');
    await page.waitForTimeout(200);
    out.table_overflow_1280 = await page.evaluate(() => {
      const s = document.querySelector('#tab-stats .scroll');
      return Math.max(s.scrollWidth - s.clientWidth,
        document.documentElement.scrollWidth - window.innerWidth);
    });
    await page.screenshot({ path: path.join(art, 'webui-stats.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    out.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(out.phone_overflow <= 0, 'the page fits a phone screen (only tables scroll)');
    await page.screenshot({ path: path.join(art, 'webui-phone.png') });
    await page.setViewportSize({ width: 1280, height: 900 });

    // stop
    await page.click('#btn-stop');
    await until(page, () => document.querySelector('#g-state').textContent === 'stopped', null,
      'the state to become stopped');
    check(await page.isVisible('#btn-new'), 'a stopped test offers a new one');

    // download the CSV through the page's link
    await page.click('button[data-tab=download]');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#dl-stats')]);
    const csvPath = path.join(art, 'webui-requests.csv');
    await dl.saveAs(csvPath);
    out.csv = fs.readFileSync(csvPath, 'utf8');
    out.csv_name = dl.suggestedFilename();
    const [rep] = await Promise.all([page.waitForEvent('download'), page.click('#dl-report')]);
    const repPath = path.join(art, 'webui-report.html');
    await rep.saveAs(repPath);
    out.report_path = repPath;

    // after Stop the header's RPS is 0 (nothing is being sent any more)
    await until(page, () => parseFloat(document.querySelector('#g-rps').textContent) === 0, null,
      'the header RPS to drop to 0 after Stop');
    out.rps_after_stop = num(await page.textContent('#g-rps'));

    // a new test starts from zero: Average size is the new target's, not the old run's
    const sizeOf = (name) => page.evaluate((n) => {
      const rows = [...document.querySelectorAll('#stats-table tbody tr')];
      const r = rows.find((tr) => tr.children[1].textContent === n);
      return r ? r.children[10].textContent : null;
    }, name);
    await page.click('button[data-tab=stats]');
    out.size_first = await sizeOf('/hello');
    await page.click('#btn-new');
    await page.waitForSelector('#start-form', { state: 'visible' });
    await page.fill('#f-host', target + '/nosuch');
    await page.fill('#f-runtime', '');
    await page.click('#btn-submit');
    await until(page, () => ['running', 'spawning'].includes(document.querySelector('#g-state').textContent),
      null, 'the second test to run');
    await until(page, () => {
      const rows = [...document.querySelectorAll('#stats-table tbody tr')];
      const r = rows.find((tr) => tr.children[1].textContent === '/hello');
      return r && parseFloat(r.children[2].textContent.replace(/,/g, '')) > 0;
    }, null, 'the second test to count /hello requests');
    out.size_second = await sizeOf('/hello');
    out.size_second_total = await page.evaluate(() =>
      document.querySelector('#stats-table tfoot tr').children[10].textContent);
    await page.click('#btn-stop');
    await until(page, () => document.querySelector('#g-state').textContent === 'stopped', null,
      'the second test to stop');
  } finally {
    out.foreign_requests = foreign;
    out.page_errors = errors;
    await ctx.close();
  }
  return out;
}

async function report(file, art) {
  // offline: no network at all, so anything not inlined in the file would fail to load
  const ctx = await browser({ offline: true });
  const page = ctx.pages()[0] || await ctx.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const out = {};
  try {
    await page.goto('file://' + path.resolve(file));
    await page.waitForFunction(() => window.ailoadReport && window.ailoadReport.charts, null, { timeout: 10000 });
    out.canvases = await page.$$eval('canvas', (c) => c.length);
    out.points = await page.evaluate(() => window.ailoadReport.charts.points());
    out.history_len = await page.evaluate(() => window.ailoadReport.history.time.length);
    out.max_rps = await page.evaluate(() => Math.max(...window.ailoadReport.history.rps));
    out.tables = await page.$$eval('table', (t) => t.map((x) => x.id));
    out.names = await page.$$eval('#requests tbody tr td:nth-child(2)', (t) => t.map((x) => x.textContent));
    fs.mkdirSync(art, { recursive: true });
    await page.screenshot({ path: path.join(art, 'report.png'), fullPage: true });
  } finally {
    out.requests = requests;
    out.page_errors = errors;
    await ctx.close();
  }
  return out;
}

// --web-auth: without credentials the page is a 401; with them (the browser's
// Basic auth, as a user typing them in the prompt) the page polls, starts a test
// and downloads a CSV through its link.
async function auth(base, target, userPass) {
  const [username, password] = userPass.split(':');
  const out = {};
  const anon = await browser();
  try {
    // (page.goto gives up at a challenge it has no credentials for: ask without a page)
    const r = await anon.request.get(base + '/');
    out.anonymous_status = r.status();
    out.anonymous_challenge = r.headers()['www-authenticate'] || null;
  } finally {
    await anon.close();
  }
  const ctx = await browser({ httpCredentials: { username, password } });
  const errors = [];
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    out.status = (await page.goto(base + '/')).status();
    await until(page, () => document.querySelector('#g-state').textContent !== '-', null, 'the first poll');
    if (await page.isVisible('#btn-new')) await page.click('#btn-new');
    await page.waitForSelector('#start-form', { state: 'visible' });
    await page.fill('#f-users', '2');
    await page.fill('#f-rate', '10');
    await page.fill('#f-host', target);
    await page.click('#btn-submit');
    await until(page, () => {
      const rows = [...document.querySelectorAll('#stats-table tbody tr')];
      const r = rows.find((tr) => tr.children[1].textContent === '/hello');
      return r && parseFloat(r.children[2].textContent.replace(/,/g, '')) > 0;
    }, null, 'the statistics table to count /hello requests');
    await page.click('button[data-tab=download]');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#dl-stats')]);
    out.csv = fs.readFileSync(await dl.path(), 'utf8');
    await page.click('#btn-stop');
    await until(page, () => document.querySelector('#g-state').textContent === 'stopped', null,
      'the state to become stopped');
  } finally {
    out.page_errors = errors;
    await ctx.close();
  }
  return out;
}

// A Python locustfile under the UI: start, live rows and charts, the
// Exceptions tab with the task's traceback, a CSV download, stop.
async function pyfile(base, target) {
  return onPage(base, async (page, out) => {
    out.initial_state = await startTest(page, base, 3, target);
    for (const name of ['home', 'item']) {
      await until(page, (n) => {
        const rows = [...document.querySelectorAll('#stats-table tbody tr')];
        const r = rows.find((tr) => tr.children[1].textContent === n);
        return r && parseFloat(r.children[2].textContent.replace(/,/g, '')) > 0;
      }, name, 'the statistics table to count ' + name + ' requests', 30000);
    }
    await until(page, () => document.querySelector('#g-users').textContent === '3', null, '3 users');
    out.rows = await page.$$eval('#stats-table tbody tr', (trs) => trs.map((tr) => tr.children[1].textContent));
    await page.click('button[data-tab=charts]');
    out.canvases = await page.$$eval('#tab-charts canvas', (c) => c.length);
    const p0 = Number(await page.getAttribute('#chart-rps', 'data-points'));
    await until(page, (p) => Number(document.querySelector('#chart-rps').dataset.points) >= p + 2,
      p0, 'the charts to gain points');
    out.chart_rps_max = await page.evaluate(() => Math.max(...window.ailoadUi.hist.rps));
    await page.click('button[data-tab=exceptions]');
    await until(page, () => document.querySelectorAll('#exceptions-table tbody tr').length > 0, null,
      'the Exceptions tab to list the task that raises', 30000);
    out.exceptions = await page.$$eval('#exceptions-table tbody tr', (trs) => trs.map((tr) =>
      [...tr.children].map((td) => td.textContent)));
    await page.click('button[data-tab=download]');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#dl-exceptions')]);
    out.exceptions_csv = fs.readFileSync(await dl.path(), 'utf8');
    await page.click('#btn-stop');
    await until(page, () => document.querySelector('#g-state').textContent === 'stopped', null,
      'the state to become stopped');
    out.final_state = 'stopped';
  });
}

// A LoadTestShape's test from the form: users and spawn rate greyed, Start runs
// the shape (2 users, then 4, then it ends the test), no Edit meanwhile.
async function shape(base) {
  return onPage(base, async (page, out) => {
    await page.goto(base + '/');
    await page.waitForSelector('#start-form', { state: 'visible' });
    await until(page, () => !document.querySelector('#shape-note').hidden, null, 'the shape note');
    out.note = await page.textContent('#shape-note');
    out.users_disabled = await page.isDisabled('#f-users');
    out.rate_disabled = await page.isDisabled('#f-rate');
    out.users_placeholder = await page.getAttribute('#f-users', 'placeholder');
    await page.click('#btn-submit');
    await until(page, () => document.querySelector('#g-users').textContent === '2', null, '2 users');
    out.edit_hidden = await page.isHidden('#btn-edit');
    await until(page, () => document.querySelector('#g-users').textContent === '4', null,
      '4 users (the second step)', 20000);
    await until(page, () => document.querySelector('#g-state').textContent === 'stopped', null,
      'the shape to end the test', 20000);
    out.final_state = 'stopped';
  });
}

(async () => {
  const [mode, a, b, c] = process.argv.slice(2);
  try {
    const out = mode === 'live' ? await live(a, b, c) : mode === 'auth' ? await auth(a, b, c)
      : mode === 'pyfile' ? await pyfile(a, b) : mode === 'shape' ? await shape(a)
      : await report(a, b);
    process.stdout.write(JSON.stringify(out) + '\n');
  } catch (e) {
    process.stderr.write('browser test failed: ' + (e && e.stack || e) + '\n');
    process.exit(1);
  }
})();
