// SPDX-License-Identifier: MIT
// For ferret-bench-pictures: speedscope (its npm package, served on
// 127.0.0.1) imports each file of DIR in headless Chromium; prints how long
// each took (from opening the page to speedscope showing the profile) and
// its profiles, and fails if one did not import.
//   node bench/speedscope-load.mjs DIR FILE...
import { launch } from '../tests/browser/browser.mjs';
import { importIntoSpeedscope, serveSpeedscope } from '../tests/browser/speedscope.mjs';

const [dir, ...files] = process.argv.slice(2);
const browser = await launch();
const server = await serveSpeedscope(dir);
let failed = false;
try {
  for (const file of files) {
    const r = await importIntoSpeedscope(browser, server, file, { rows: false });
    const ok = r.problems.length === 0 && r.profiles.length > 0;
    failed ||= !ok;
    console.log(`  ${file.padEnd(30)} ${ok ? 'imported' : 'FAILED'} in ${(r.importMs / 1000).toFixed(1)} s, ` +
                `${r.profiles.length} profile(s) shown${ok ? '' : ': ' + r.problems.join('; ')}`);
    await r.page.close();
  }
} finally {
  server.close();
  await browser.close();
}
process.exit(failed ? 1 : 0);
