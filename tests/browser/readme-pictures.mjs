// SPDX-License-Identifier: MIT
// The README's pictures: the demo's flame graph and report, as Chromium
// shows them. Run by scripts/pictures (which makes the demo's run first):
//   node readme-pictures.mjs FLAME.svg REPORT.html OUT_DIR
import path from 'node:path';

import { launch, newPage } from './browser.mjs';

const [svg, html, out] = process.argv.slice(2);
const browser = await launch();
try {
  const flame = await newPage(browser);
  await flame.goto('file://' + path.resolve(svg));
  // The pointer over a frame, so that the picture shows its details line.
  await flame.hover('g.f[data-n="process_batch"]');
  await flame.locator(':root').screenshot({ path: path.join(out, 'flame.png') });
  const report = await newPage(browser);
  await report.setViewportSize({ width: 1100, height: 900 });
  await report.goto('file://' + path.resolve(html));
  await report.screenshot({ path: path.join(out, 'report.png'), fullPage: true });
  for (const p of [flame, report])
    if (p.problems.length) throw new Error(p.problems.join('\n'));
} finally {
  await browser.close();
}
console.log(`wrote ${path.join(out, 'flame.png')} and ${path.join(out, 'report.png')}`);
