/* SPDX-License-Identifier: MIT */
/*
 * The report's behaviour: sort the summary by any column (click its
 * heading; again to reverse), and drive the flame graph's search and zoom
 * from the page (the flame graph's own script, inside its <svg>, does the
 * rest). Cells carry their raw value in data-v, so that times sort as
 * numbers, not as text.
 */
(function () {
  'use strict';
  const table = document.getElementById('summary-table');
  const heads = Array.from(table.tHead.rows[0].cells);
  heads.forEach((th, column) => {
    th.addEventListener('click', () => {
      const ascending = th.getAttribute('aria-sort') !== 'ascending';
      const numeric = th.dataset.type === 'num';
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      const value = (row) => {
        const cell = row.cells[column];
        return numeric ? +cell.dataset.v : cell.textContent;
      };
      rows.sort((a, b) => {
        const x = value(a), y = value(b);
        const c = numeric ? x - y : x.localeCompare(y);
        return ascending ? c : -c;
      });
      for (const row of rows) body.appendChild(row);
      heads.forEach((h) => h.removeAttribute('aria-sort'));
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    });
  });

  const flame = document.querySelector('#flame svg.ferret-flame');
  const input = document.getElementById('flame-search');
  const matched = document.getElementById('flame-matched');
  if (flame && flame.ferretFlame) {
    input.addEventListener('input', () => {
      const r = flame.ferretFlame.search(input.value);
      matched.textContent = input.value ? r.share.toFixed(1) + '% of the time in ' + r.frames + ' frame' + (r.frames === 1 ? '' : 's') : '';
    });
    document.getElementById('flame-reset').addEventListener('click', () => flame.ferretFlame.reset());
  }
})();
