// SPDX-License-Identifier: MIT
// What the browser tests share: Debian's Chromium started headless through
// playwright-core (never a downloaded browser), with a fresh profile each
// time; every console error and page error of a page collected, so that a
// test can assert there were none; a static HTTP server on 127.0.0.1 for
// pages that must be served (speedscope); the ferret command; and a
// directory for the screenshots the tests keep.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.FERRET_CHROMIUM || '/usr/bin/chromium';
export const FERRET = process.env.FERRET_CLI;
export const ARTEFACTS = process.env.FERRET_ARTEFACTS || path.join(os.tmpdir(), 'ferret-artefacts');

// A prerequisite missing: skip (77), except in CI, where it fails.
export function require(what, ok) {
  if (ok) return;
  console.log(`${process.env.CI === 'true' ? 'FAIL' : 'SKIP'}: ${what}`);
  process.exit(process.env.CI === 'true' ? 1 : 77);
}

let playwright;
export async function launch() {
  require(`no Chromium at ${CHROMIUM} (scripts/test installs Debian's chromium)`, fs.existsSync(CHROMIUM));
  try {
    playwright = await import('playwright-core');
  } catch {
    require('no playwright-core in tests/browser/node_modules (scripts/test runs npm ci there)', false);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ferret-chromium-'));
  const context = await playwright.chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
           '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return context;
}

// A new page whose console errors and uncaught exceptions land in .problems.
export async function newPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  // Nothing of ours may reach the network: a picture must open offline.
  page.requests = [];
  page.on('request', (r) => page.requests.push(r.url()));
  return page;
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTEFACTS, { recursive: true });
  const file = path.join(ARTEFACTS, name);
  // A whole-page screenshot never finishes on an SVG document (the
  // viewport holds a flame graph anyway).
  const html = await page.evaluate(() => document.documentElement instanceof HTMLElement);
  if (html) await page.screenshot({ path: file, fullPage: true });
  else await page.locator(':root').screenshot({ path: file });
  console.log(`screenshot: ${file}`);
  return file;
}

// Serves each (URL prefix -> directory) pair on 127.0.0.1; resolves to the
// server with .url.
export function serve(routes) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
                  '.wasm': 'application/wasm', '.png': 'image/png', '.woff2': 'font/woff2', '.svg': 'image/svg+xml' };
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    for (const [prefix, dir] of Object.entries(routes)) {
      if (!url.startsWith(prefix)) continue;
      const file = path.join(dir, url.slice(prefix.length) || 'index.html');
      if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) break;
      res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
      return;
    }
    res.writeHead(404);
    res.end();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    server.url = `http://127.0.0.1:${server.address().port}`;
    resolve(server);
  }));
}

// ferret ARGS in @cwd; its standard output. Throws with its stderr.
export function ferret(args, cwd) {
  return execFileSync(FERRET, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 30,
                                      env: { ...process.env, NO_COLOR: '1' } });
}

export function tempDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ferret-${name}-`));
}

// The nodes of a merged tree (ferret ... --tree --json), each with its path
// ("a;b;c"), depth first.
export function treePaths(tree) {
  const out = [];
  const walk = (nodes, prefix) => {
    for (const n of nodes) {
      const p = prefix ? `${prefix};${n.name}` : n.name;
      out.push({ ...n, path: p });
      walk(n.children || [], p);
    }
  };
  walk(tree.roots, '');
  return out;
}
