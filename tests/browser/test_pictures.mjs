// SPDX-License-Identifier: MIT
// ferret flame and ferret report, opened from disk in headless Chromium:
// the frames and their widths against the run's call paths, zoom, search
// and its share of the time, tooltips, errors and warnings marked, the
// report's header, summary (sorted by a click), inline flame graph and
// timeline; no console error, no request to anywhere. Screenshots are kept.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { ferret, launch, newPage, screenshot, tempDir, treePaths } from './browser.mjs';

const DEMO = process.env.FERRET_DEMO;
const SPAN_MIX = process.env.FERRET_SPAN_MIX;
const PLOT_W = 1180;   // the flame graph's plot, in SVG units (cli/flame-svg.c)
let dir, browser, tree, summary, run;

before(async () => {
  dir = tempDir('pictures');
  ferret(['run', '--db', 'demo.db', '--run-id', 'demo', '--', DEMO], dir);
  ferret(['flame', '--db', 'demo.db', '-o', 'flame.svg'], dir);
  ferret(['report', '--db', 'demo.db', '-o', 'report.html'], dir);
  tree = JSON.parse(ferret(['analyze', 'demo.db', '--tree', '--json'], dir));
  summary = JSON.parse(ferret(['analyze', 'demo.db', '--json'], dir));
  run = JSON.parse(ferret(['analyze', 'demo.db', '--json', '--tree', '--expand'], dir));
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
});

// Every frame of the flame graph in @page: its call path, class, title and
// width, in the SVG's own units.
async function frames(page, svg = 'svg.ferret-flame') {
  return page.$$eval(`${svg} g.f`, (gs) => {
    const paths = [];
    return gs.map((g, i) => {
      const p = +g.dataset.p;
      paths[i] = p >= 0 ? (paths[p] === '' ? g.dataset.n : `${paths[p]};${g.dataset.n}`) : '';
      const r = g.querySelector('rect.fr');
      return {
        path: paths[i], name: g.dataset.n, cls: g.getAttribute('class'), title: g.querySelector('title').textContent,
        width: +r.getAttribute('width'), x: +r.getAttribute('x'), hidden: g.classList.contains('fg-hidden'),
        stroke: getComputedStyle(r).stroke,
      };
    });
  });
}

function checkFrames(fs) {
  const whole = fs[0];
  assert.equal(whole.name, 'all');
  assert.equal(whole.width, PLOT_W);
  const nodes = treePaths(tree);
  const total = tree.roots.reduce((s, n) => s + n.total_ns, 0);
  for (const n of nodes) {
    const f = fs.find((x) => x.path === n.path);
    assert.ok(f, `no frame for ${n.path}`);
    assert.ok(Math.abs(f.width - (n.total_ns / total) * PLOT_W) < 0.02, `${n.path}: width ${f.width}`);
    assert.ok(f.title.startsWith(`${n.name}\ntotal `), f.title);
    assert.match(f.title, /self .*\n\d+ calls? · avg .* · p50 .* · p99 /);
  }
  assert.equal(fs.length, nodes.length + 1, 'a frame for each call path, and one for the whole');
}

test('the flame graph: frames, widths, tooltips, marks', async () => {
  const page = await newPage(browser);
  await page.goto('file://' + path.join(dir, 'flame.svg'));
  const fs = await frames(page);
  checkFrames(fs);
  const err = fs.find((f) => f.name === 'fetch_user:3'), warn = fs.find((f) => f.name === 'fetch_user:2');
  assert.match(err.cls, /\ball-err\b/);
  assert.equal(err.stroke, 'rgb(196, 0, 0)');
  assert.match(err.title, /1 error · 0 warnings\nuser 3 not found/);
  assert.match(warn.cls, /\ball-warn\b/);
  assert.equal(warn.stroke, 'rgb(138, 90, 0)');
  assert.equal(fs.filter((f) => /\b(err|warn)\b/.test(f.cls)).length, 2);
  const header = await page.textContent('[data-role="header"]');
  assert.match(header, new RegExp(`^${run.roots.length ? '11' : ''} spans · 1 process · 0 dropped · `));
  await screenshot(page, 'flame.png');
  assert.deepEqual(page.problems, []);
  assert.deepEqual(page.requests.filter((u) => !u.startsWith('file:')), []);
});

test('the flame graph: click to zoom, reset', async () => {
  const page = await newPage(browser);
  await page.goto('file://' + path.join(dir, 'flame.svg'));
  const before = await frames(page);
  await page.click('g.f[data-n="worker"]');
  await page.waitForFunction(() => document.documentElement.dataset.zoomed === 'worker');
  const zoomed = await frames(page);
  const node = (p) => treePaths(tree).find((n) => n.path === p);
  const worker = 'ferret-demo;process_batch;worker';
  assert.equal(zoomed.find((f) => f.path === worker).width, PLOT_W);
  const chunk = zoomed.find((f) => f.path === `${worker};process_chunk`);
  assert.ok(Math.abs(chunk.width - (node(`${worker};process_chunk`).total_ns / node(worker).total_ns) * PLOT_W) < 0.02);
  // Its ancestors span the width; what is not under it is gone.
  assert.equal(zoomed.find((f) => f.path === 'ferret-demo;process_batch').width, PLOT_W);
  assert.ok(zoomed.find((f) => f.name === 'fetch_user:1').hidden);
  assert.ok(zoomed.find((f) => f.name === 'heavy_computation').hidden);
  await screenshot(page, 'flame-zoomed.png');
  await page.click('[data-role="reset"]');
  await page.waitForFunction(() => document.documentElement.dataset.zoomed === '');
  const back = await frames(page);
  for (let i = 0; i < before.length; i++) assert.deepEqual([back[i].x, back[i].width, back[i].hidden],
                                                           [before[i].x, before[i].width, before[i].hidden]);
  assert.deepEqual(page.problems, []);
});

test('the flame graph: search highlights and tells the share', async () => {
  const page = await newPage(browser);
  await page.goto('file://' + path.join(dir, 'flame.svg'));
  page.once('dialog', (d) => d.accept('FETCH_user'));
  await page.click('[data-role="search"]');
  await page.waitForFunction(() => document.documentElement.dataset.matchedShare);
  const fs = await frames(page);
  const hits = fs.filter((f) => /\bmatch\b/.test(f.cls)).map((f) => f.name).sort();
  assert.deepEqual(hits, ['fetch_user:1', 'fetch_user:2', 'fetch_user:3', 'fetch_user:4']);
  const total = tree.roots.reduce((s, n) => s + n.total_ns, 0);
  const want = treePaths(tree).filter((n) => n.name.startsWith('fetch_user')).reduce((s, n) => s + n.total_ns, 0);
  const share = await page.evaluate(() => document.documentElement.dataset.matchedShare);
  assert.equal(share, ((100 * want) / total).toFixed(2));
  assert.match(await page.textContent('[data-role="matched"]'), new RegExp(`${((100 * want) / total).toFixed(1)}% of the time, 4 frames`));
  // A match inside a match counts once: "process" matches process_batch and process_chunk under it.
  page.once('dialog', (d) => d.accept('process'));
  await page.click('[data-role="search"]');
  await page.waitForFunction(() => document.documentElement.dataset.matchedShare !== '' &&
                                   document.querySelectorAll('g.f.match').length === 2);
  const batch = treePaths(tree).find((n) => n.name === 'process_batch').total_ns;
  assert.equal(await page.evaluate(() => document.documentElement.dataset.matchedShare), ((100 * batch) / total).toFixed(2));
  await screenshot(page, 'flame-search.png');
  assert.deepEqual(page.problems, []);
});

test('the report: header, sortable summary, flame graph, timeline', async () => {
  const page = await newPage(browser);
  await page.goto('file://' + path.join(dir, 'report.html'));
  const facts = await page.$$eval('#run-header div', (ds) => Object.fromEntries(ds.map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent])));
  assert.equal(facts.spans, String(summary.spans));
  assert.equal(facts.processes, '1');
  assert.equal(facts.dropped, String(summary.dropped));

  const rows = () => page.$$eval('#summary-table tbody tr', (trs) => trs.map((tr) => ({
    name: tr.cells[0].textContent, count: +tr.cells[1].dataset.v, total: +tr.cells[2].dataset.v })));
  const shown = await rows();
  assert.deepEqual(shown.map((r) => r.name), summary.rows.map((r) => r.name));
  assert.deepEqual(shown.map((r) => r.total), summary.rows.map((r) => r.total_ns));
  await page.click('#summary-table th:nth-child(2)');   // Count, ascending
  const up = await rows();
  assert.equal(await page.getAttribute('#summary-table th:nth-child(2)', 'aria-sort'), 'ascending');
  assert.deepEqual(up.map((r) => r.count), [...up.map((r) => r.count)].sort((a, b) => a - b));
  assert.equal(up.at(-1).name, 'process_chunk');
  await page.click('#summary-table th:nth-child(2)');   // and descending
  assert.equal((await rows())[0].name, 'process_chunk');
  await page.click('#summary-table th:nth-child(1)');   // Name, as text
  assert.deepEqual((await rows()).map((r) => r.name), [...shown.map((r) => r.name)].sort((a, b) => a.localeCompare(b)));

  checkFrames(await frames(page, '#flame svg.ferret-flame'));
  await page.fill('#flame-search', 'heavy');
  await page.waitForFunction(() => document.querySelectorAll('#flame g.f.match').length === 1);
  assert.match(await page.textContent('#flame-matched'), /% of the time in 1 frame$/);
  await page.click('#flame g.f[data-n="process_batch"]');
  await page.click('#flame-reset');

  // The timeline: a bar a span, on its thread's lane, errors marked.
  const bars = await page.$$eval('#timeline rect.tl-span', (rs) => rs.map((r) => ({ name: r.dataset.n, cls: r.getAttribute('class') })));
  assert.equal(bars.length, summary.spans);
  assert.deepEqual([...new Set(bars.map((b) => b.name))].sort(), summary.rows.map((r) => r.name).sort());
  assert.deepEqual(bars.filter((b) => /\berr\b/.test(b.cls)).map((b) => b.name), ['fetch_user:3']);
  const lanes = await page.$$eval('#timeline text.tl-lane title', (ts) => ts.map((t) => t.textContent));
  assert.equal(lanes.length, 3, lanes.join(' | '));   // the process span's, the main thread's, the worker's
  assert.equal(await page.getAttribute('#timeline svg', 'data-mode'), 'spans');
  await screenshot(page, 'report.png');
  assert.deepEqual(page.problems, []);
  assert.deepEqual(page.requests.filter((u) => !u.startsWith('file:')), []);
});

test('the report of a run too large to draw span by span: slices of time per lane', async () => {
  ferret(['run', '--quiet', '--db', 'mix.db', '--run-id', 'mix', '--', SPAN_MIX, '3', '4', '6000'], dir);
  ferret(['report', '--db', 'mix.db', '-o', 'mix.html'], dir);
  const all = JSON.parse(ferret(['analyze', 'mix.db', '--tree', '--expand', '--json'], dir));
  const lanes = new Set();
  let n = 0;
  const walk = (nodes) => nodes.forEach((s) => { n++; lanes.add(`${s.pid}/${s.tid}/${s.kind}`); walk(s.children || []); });
  walk(all.roots);
  assert.ok(n > 20000);
  const page = await newPage(browser);
  await page.goto('file://' + path.join(dir, 'mix.html'));
  assert.equal(await page.getAttribute('#timeline svg', 'data-mode'), 'slices');
  assert.match(await page.textContent('#timeline p.note'), /600 slices of time/);
  assert.equal(await page.locator('#timeline rect.tl-span').count(), 0);
  assert.equal(await page.locator('#timeline text.tl-lane').count(), lanes.size);
  // The threads were busy most of the run: most of their slices are drawn.
  const slices = await page.locator('#timeline rect.tl-slice').count();
  assert.ok(slices > lanes.size * 100, `${slices} slices`);
  assert.equal(await page.locator('#summary-table tbody tr').count(), 14);   // 12 names, await_io, the process
  // Paths where some calls failed: a strip as wide as their share.
  const strips = await page.$$eval('#flame g.f.err:not(.all-err)', (gs) => gs.map((g) => [
    +g.dataset.errors / +g.dataset.count, +g.querySelector('rect.fr').getAttribute('width'),
    +g.querySelector('rect.err-strip').getAttribute('width')]));
  assert.ok(strips.length > 10);
  for (const [share, width, strip] of strips) assert.ok(Math.abs(strip - share * width) < 0.02, `${strip} of ${width}`);
  await screenshot(page, 'report-slices.png');
  assert.deepEqual(page.problems, []);
});
