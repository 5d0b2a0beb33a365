// SPDX-License-Identifier: MIT
// ferret export, read by speedscope, which nobody here wrote: each format of
// two runs (the demo, and 20,000 spans on four threads with tags, errors and
// async spans) imports without an error, and shows per thread (or, for
// folded stacks, per name) the totals the stored spans say. The speedscope
// export is also valid against the JSON schema the speedscope package ships,
// and the Chrome export holds an event for every span.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { ferret, launch, require as needs, screenshot, tempDir } from './browser.mjs';
import { importIntoSpeedscope, serveSpeedscope, speedscopeRelease } from './speedscope.mjs';

const RUNS = {
  demo: [process.env.FERRET_DEMO],
  mix: [process.env.FERRET_SPAN_MIX, '7', '4', '5000'],
};
let dir, browser, server, Ajv, SCHEMA;
const spans = {}, trees = {};

before(async () => {
  // Loaded here rather than imported, so that a missing package skips.
  try {
    ({ default: Ajv } = await import('ajv'));
    SCHEMA = path.join(speedscopeRelease(), 'file-format-schema.json');
  } catch {
    needs('no ajv or speedscope in tests/browser/node_modules (scripts/test runs npm ci there)', false);
  }
  dir = tempDir('exports');
  for (const [run, argv] of Object.entries(RUNS)) {
    ferret(['run', '--quiet', '--db', 'x.db', '--run-id', run, '--', ...argv], dir);
    for (const [format, file] of [['chrome', `${run}.trace.json`], ['speedscope', `${run}.speedscope.json`],
                                  ['folded', `${run}.folded.txt`]])
      ferret(['export', '--db', 'x.db', '--run', run, '--format', format, '-o', file], dir);
    spans[run] = [];
    const walk = (nodes) => nodes.forEach((n) => { spans[run].push(n); walk(n.children || []); });
    walk(JSON.parse(ferret(['analyze', 'x.db', '--run', run, '--tree', '--expand', '--json'], dir)).roots);
    trees[run] = JSON.parse(ferret(['analyze', 'x.db', '--run', run, '--tree', '--json'], dir));
  }
  browser = await launch();
  server = await serveSpeedscope(dir);
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
});

// name -> total ns of each lane's spans: a lane is a thread's sync spans, or
// its async ones (which the Chrome importer leaves out).
function lanes(run, withAsync) {
  const byLane = new Map();
  for (const s of spans[run]) {
    if (s.kind === 'async' && !withAsync) continue;
    const key = `${s.pid}/${s.tid}/${s.kind}`;
    if (!byLane.has(key)) byLane.set(key, {});
    const m = byLane.get(key);
    m[s.name] = (m[s.name] || 0) + s.duration_ns;
  }
  return [...byLane.values()];
}

// Each profile speedscope shows is one of the lanes, name for name, each
// total within 0.01 ms (or 0.1%): speedscope shows two decimals.
// Frames of one name are added up: speedscope's reader of trace events
// names a frame by its event's name and args ("fetch_user:3 {...}"), though
// with the export's samples it reads those instead, by name.
function assertProfilesAreLanes(profiles, want) {
  assert.equal(profiles.length, want.length, `profiles: ${profiles.map((p) => p.name).join(' | ')}`);
  const left = [...want];
  for (const p of profiles) {
    const shown = {};
    for (const r of p.rows) {
      const name = r.name.replace(/ \{.*\}$/s, '');
      shown[name] = (shown[name] || 0) + r.total;
    }
    const i = left.findIndex((lane) => Object.keys(lane).sort().join() === Object.keys(shown).sort().join() &&
      Object.entries(lane).every(([name, ns]) => Math.abs(shown[name] - ns) <= Math.max(10000, ns * 1e-3)));
    assert.ok(i >= 0, `speedscope's profile ${p.name} shows ${JSON.stringify(shown)}, no lane of ${JSON.stringify(left)}`);
    left.splice(i, 1);
  }
}

for (const run of Object.keys(RUNS)) {
  test(`${run}: the speedscope export is valid against speedscope's schema`, () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(JSON.parse(fs.readFileSync(SCHEMA, 'utf8')));
    const file = JSON.parse(fs.readFileSync(path.join(dir, `${run}.speedscope.json`), 'utf8'));
    assert.ok(validate(file), JSON.stringify(validate.errors, null, 1));
    // Every span opens and closes once.
    const events = file.profiles.reduce((n, p) => n + p.events.length, 0);
    assert.equal(events, 2 * spans[run].length);
  });

  test(`${run}: the chrome export holds every span`, () => {
    const trace = JSON.parse(fs.readFileSync(path.join(dir, `${run}.trace.json`), 'utf8'));
    const ev = trace.traceEvents;
    const async = spans[run].filter((s) => s.kind === 'async').length;
    assert.equal(ev.filter((e) => e.ph === 'X').length, spans[run].length - async);
    assert.equal(ev.filter((e) => e.ph === 'b').length, async);
    assert.equal(ev.filter((e) => e.ph === 'e').length, async);
    const errors = spans[run].filter((s) => s.status === 'error').length;
    assert.equal(ev.filter((e) => e.args && e.args.status === 'error').length, errors);
    const threads = new Set(spans[run].map((s) => `${s.pid}/${s.tid}`));
    assert.equal(ev.filter((e) => e.ph === 'M' && e.name === 'thread_name').length, threads.size);
    assert.equal(trace.otherData.run, run);
  });

  test(`${run}: speedscope imports the speedscope export, a profile a thread`, async () => {
    const r = await importIntoSpeedscope(browser, server, `${run}.speedscope.json`);
    assert.deepEqual(r.problems, []);
    assertProfilesAreLanes(r.profiles, lanes(run, true));
    await screenshot(r.page, `speedscope-${run}.png`);
    await r.page.close();
  });

  test(`${run}: speedscope imports the chrome export`, async () => {
    const r = await importIntoSpeedscope(browser, server, `${run}.trace.json`);
    assert.deepEqual(r.problems, []);
    assertProfilesAreLanes(r.profiles, lanes(run, false));
    await r.page.close();
  });

  test(`${run}: speedscope imports the folded stacks`, async () => {
    const r = await importIntoSpeedscope(browser, server, `${run}.folded.txt`);
    assert.deepEqual(r.problems, []);
    assert.equal(r.profiles.length, 1);
    // A folded line is a path's self time, so a name's total is what its
    // paths and everything under them hold: their self times summed.
    const want = {};
    const inclusive = (n) => (n.process ? 0 : n.self_ns) + (n.children || []).reduce((s, c) => s + inclusive(c), 0);
    const walk = (nodes) => nodes.forEach((n) => {
      const v = inclusive(n);
      if (v && !n.process) want[n.name] = (want[n.name] || 0) + v;
      walk(n.children || []);
    });
    walk(trees[run].roots);
    const shown = Object.fromEntries(r.profiles[0].rows.map((row) => [row.name, row.total]));
    for (const [name, ns] of Object.entries(want)) assert.ok(Math.abs(shown[name] - ns) <= Math.max(1, ns * 1e-3), `${name}: ${shown[name]} against ${ns}`);
    assert.deepEqual(Object.keys(shown).sort(), Object.keys(want).sort());
    await r.page.close();
  });
}
