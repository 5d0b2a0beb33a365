// SPDX-License-Identifier: MIT
// speedscope (the npm package's static build, served on 127.0.0.1) as the
// independent reader of Ferret's exports: import a file, say whether it
// imported, and read back from speedscope's own page what it shows: its
// profiles (threads) and, for each, the Sandwich view's table of frames
// with their total and self time. How its page is read (the toolbar's view
// tabs appear once a profile is active; the profile list is a table in the
// toolbar; "n" shows the next profile; the Sandwich table is virtualized,
// 20 px a row) was found by reading speedscope 1.25 in a browser; the
// version is pinned in package.json.
import { createRequire } from 'node:module';
import path from 'node:path';

import { serve } from './browser.mjs';

const require = createRequire(import.meta.url);
// The package's static build; it is looked for when first served, so that a
// missing package skips the test rather than failing its import.
export const speedscopeRelease = () => path.join(path.dirname(require.resolve('speedscope/package.json')), 'dist', 'release');
const ROW_PX = 20;

// Serves speedscope at / and the files of @dir at /files/.
export function serveSpeedscope(dir) {
  return serve({ '/files/': dir, '/': speedscopeRelease() });
}

function pageState() {
  const tabs = [...document.querySelectorAll('div')].some(
    (d) => d.children.length === 1 && d.firstElementChild.tagName === 'SPAN' && d.textContent === '🥪Sandwich');
  if (tabs) return 'loaded';
  const text = document.body ? document.body.innerText : '';
  if (text.includes('Something went wrong.')) return 'error';
  return 'loading';
}

function readProfiles() {
  const tab = [...document.querySelectorAll('div')].find((d) => d.textContent === '🥪Sandwich' && d.children.length === 1);
  const left = tab.parentElement, toolbar = left.parentElement, right = toolbar.lastElementChild;
  const centre = [...toolbar.childNodes].filter((n) => n !== left && n !== right);
  const div = centre.find((n) => n.nodeType === 1);
  if (!div) return { active: 0, names: [centre.map((n) => n.textContent).join('')] };
  const m = /\((\d+)\/(\d+)\)\s*$/.exec(div.querySelector('span').textContent);
  const rows = [...div.querySelectorAll('tr[title]')].map((tr) => [+tr.children[0].textContent - 1, tr.children[1].textContent]);
  rows.sort((a, b) => a[0] - b[0]);
  return { active: +m[1] - 1, names: rows.map((r) => r[1]) };
}

async function readSandwich(ROW) {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const th = [...document.querySelectorAll('th')].find((t) => t.textContent.trim() === 'Symbol Name');
  const viewport = th.closest('table').nextElementSibling;
  const sizer = viewport.firstElementChild, shifter = sizer.firstElementChild;
  const count = Math.round((parseFloat(sizer.style.height) || 0) / ROW);
  const rows = new Array(count).fill(null);
  const first = () => Math.round(parseFloat((/translateY\((-?[\d.]+)px\)/.exec(shifter.style.transform || '') || [0, 0])[1]) / ROW);
  const shown = () => [...shifter.querySelectorAll('tr')].filter((tr) => tr.children.length >= 3);
  for (let next = 0; next < count;) {
    if (rows[next]) { next++; continue; }
    viewport.scrollTop = next * ROW;
    for (let i = 0; i < 120 && !(first() <= next && next < first() + shown().length); i++) await frame();
    const f = first();
    shown().forEach((tr, k) => {
      if (f + k < count && !rows[f + k]) rows[f + k] = { total: tr.children[0].textContent.trim(), self: tr.children[1].textContent.trim(), name: tr.children[2].textContent };
    });
    if (!rows[next]) throw new Error(`row ${next} of ${count} never rendered`);
  }
  return rows;
}

// "16.48ms (23.5%)" -> 16480000 (ns); "1,234" -> 1234 (a weight).
export function parseCell(text) {
  const display = text.replace(/\s*\([^()]*\)$/, '');
  let m;
  if ((m = /^(-?[\d.]+)(ns|µs|ms|s)$/.exec(display))) return Number(m[1]) * { ns: 1, µs: 1e3, ms: 1e6, s: 1e9 }[m[2]];
  if ((m = /^(-?)(\d+):(\d\d)$/.exec(display))) return (m[1] ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 1e9;
  if (/^-?[\d,]+(\.\d+)?$/.test(display)) return Number(display.replace(/,/g, ''));
  throw new Error(`speedscope shows '${text}', which this test cannot read`);
}

// Imports @name (served at /files/) into speedscope in a new page of
// @browser; resolves to { profiles: [{ name, rows: [{ name, total, self }] }],
// problems, importMs } once every profile's Sandwich table is read (with
// rows: false, once the profiles are listed).
export async function importIntoSpeedscope(browser, server, name, { rows = true, timeoutMs = 600000 } = {}) {
  const t0 = Date.now();
  const page = await browser.newPage();
  const problems = [];
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || (m.type() === 'log' && m.text().startsWith('Failed to load format'))) problems.push(`console: ${m.text()}`);
  });
  const url = `${server.url}/files/${encodeURIComponent(name)}`;
  await page.goto(`${server.url}/index.html#profileURL=${encodeURIComponent(url)}`);
  await page.waitForFunction(`(${pageState})() !== 'loading'`, null, { timeout: timeoutMs, polling: 100 })
    .catch(() => problems.push('speedscope never showed the profile'));
  const state = await page.evaluate(pageState);
  const importMs = Date.now() - t0;
  if (state !== 'loaded') {
    problems.push(`speedscope shows: ${(await page.evaluate(() => document.body.innerText)).slice(0, 300)}`);
    return { page, profiles: [], problems, importMs };
  }
  if (!rows) {
    const list = await page.evaluate(readProfiles);
    return { page, profiles: list.names.map((n) => ({ name: n, rows: [] })), problems, importMs };
  }
  const tab = await page.evaluateHandle(() => [...document.querySelectorAll('div')].find(
    (d) => d.children.length === 1 && d.firstElementChild.tagName === 'SPAN' && d.textContent === '🥪Sandwich'));
  await tab.asElement().click();
  await page.waitForFunction(() => [...document.querySelectorAll('th')].some((t) => t.textContent.trim() === 'Symbol Name'));
  const list = await page.evaluate(readProfiles);
  const profiles = [];
  for (let i = 0; i < list.names.length; i++) {
    while ((await page.evaluate(readProfiles)).active !== i) await page.keyboard.press('n');
    const rows = (await page.evaluate(readSandwich, ROW_PX)).map((r) => ({ name: r.name, total: parseCell(r.total), self: parseCell(r.self) }));
    profiles.push({ name: list.names[i], rows });
  }
  return { page, profiles, problems, importMs };
}
