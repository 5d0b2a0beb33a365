/* SPDX-License-Identifier: MIT */
/*
 * The flame graph's behaviour: click a frame to zoom to it, "Reset zoom" (or
 * Escape) to come back, "Search" (or Ctrl+F) to highlight the frames whose
 * name holds some text and say what share of the time they hold, and the
 * frame under the pointer described at the bottom. The frames are drawn by
 * cli/flame-svg.c, which writes each frame's numbers as data attributes:
 * data-x and data-w (its place and width, in ns of the layout), data-d (its
 * depth), data-p (its parent frame's index), and its statistics. The same
 * script serves the standalone SVG (ferret flame) and the SVG inlined in
 * the HTML report, which adds an input box through svg.ferretFlame.
 */
function ferretFlame(svg) {
  'use strict';
  const plotX = +svg.dataset.plotX, plotW = +svg.dataset.plotW;
  const charW = +svg.dataset.charW;
  const byId = (id) => svg.querySelector('[data-role="' + id + '"]');
  const reset = byId('reset'), searchButton = byId('search'), matched = byId('matched'), details = byId('details');
  const frames = Array.from(svg.querySelectorAll('g.f')).map((g) => ({
    g: g,
    rect: g.querySelector('rect.fr'),
    strips: Array.from(g.querySelectorAll('rect.strip')),
    text: g.querySelector('text'),
    name: g.dataset.n,
    x: +g.dataset.x,
    w: +g.dataset.w,
    d: +g.dataset.d,
    p: +g.dataset.p,
  }));
  const root = frames[0];
  let zoomed = null;

  function formatNs(ns) {
    if (ns < 1e3) return ns.toFixed(0) + ' ns';
    if (ns < 1e6) return (ns / 1e3).toFixed(2) + ' \u00b5s';
    if (ns < 1e9) return (ns / 1e6).toFixed(2) + ' ms';
    return (ns / 1e9).toFixed(2) + ' s';
  }

  function label(name, px) {
    const fit = Math.floor((px - 6) / charW);
    if (fit < 3) return '';
    return name.length <= fit ? name : name.slice(0, fit - 2) + '..';
  }

  function place(f, x, w) {
    f.g.classList.remove('fg-hidden');
    f.rect.setAttribute('x', x.toFixed(2));
    f.rect.setAttribute('width', Math.max(w, 0).toFixed(2));
    for (const s of f.strips) {
      s.setAttribute('x', (x + w * (+s.dataset.after || 0)).toFixed(2));
      s.setAttribute('width', (w * +s.dataset.share).toFixed(2));
    }
    f.text.setAttribute('x', (x + 3).toFixed(2));
    f.text.textContent = label(f.name, w);
  }

  function isUnder(f, top) {
    for (let i = frames.indexOf(f); i >= 0; i = frames[i].p) if (frames[i] === top) return true;
    return false;
  }

  function zoom(target) {
    zoomed = target === root ? null : target;
    const anc = new Set();
    for (let i = target.p; i >= 0; i = frames[i].p) anc.add(frames[i]);
    for (const f of frames) {
      f.g.classList.toggle('anc', anc.has(f));
      f.g.classList.toggle('zoomed', f === zoomed);
      if (anc.has(f)) place(f, plotX, plotW);
      else if (f.d >= target.d && isUnder(f, target)) place(f, plotX + ((f.x - target.x) / target.w) * plotW, (f.w / target.w) * plotW);
      else f.g.classList.add('fg-hidden');
    }
    reset.classList.toggle('fg-hidden', !zoomed);
    svg.dataset.zoomed = zoomed ? zoomed.name : '';
  }

  function search(term) {
    const needle = (term || '').toLowerCase();
    let share = 0, count = 0;
    for (const f of frames) {
      const hit = needle !== '' && f !== root && f.name.toLowerCase().includes(needle);
      f.g.classList.toggle('match', hit);
      if (!hit) continue;
      count++;
      /* A match inside a match is already counted. */
      let outer = false;
      for (let i = f.p; i >= 0 && !outer; i = frames[i].p) outer = frames[i].g.classList.contains('match');
      if (!outer) share += f.w;
    }
    const pct = root.w > 0 ? (100 * share) / root.w : 0;
    svg.dataset.matchedShare = needle ? pct.toFixed(2) : '';
    matched.textContent = needle ? 'Matched "' + term + '": ' + pct.toFixed(1) + '% of the time, ' + count + ' frame' + (count === 1 ? '' : 's') : '';
    return { share: pct, frames: count };
  }

  for (const f of frames) {
    f.g.addEventListener('click', () => zoom(f));
    f.g.addEventListener('mouseover', () => { details.textContent = f.g.querySelector('title').textContent.replace(/\n/g, ' \u00b7 '); });
    f.g.addEventListener('mouseout', () => { details.textContent = ' '; });
  }
  reset.addEventListener('click', () => zoom(root));
  searchButton.addEventListener('click', () => {
    const term = window.prompt('Highlight the frames whose name holds (no text: none)', '');
    if (term !== null) search(term);
  });
  svg.ownerDocument.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') zoom(root);
    else if (e.key === 'f' && (e.ctrlKey || e.metaKey) && svg.ownerDocument.documentElement === svg) {
      e.preventDefault();
      searchButton.dispatchEvent(new MouseEvent('click'));
    }
  });
  svg.ferretFlame = { zoom: (name) => { const f = frames.find((x) => x.name === name); if (f) zoom(f); return !!f; },
                      reset: () => zoom(root), search: search, formatNs: formatNs };
}
ferretFlame(document.currentScript.closest('svg'));
