// Model cases in the review console: a model upload (checkpoint, LoRA) that matched a banked model is shown as
// what it is (file name, size, format, architecture) and which banked models it derives from, by which tier,
// with scores, coefficients and estimated error and the bank's lineage labels. Never a media preview: the
// file is weights. app.js calls panel() for the left column and lineage() for the right.
'use strict';
window.WardenModels = (() => {
  const TIERS = {
    T0: ['exact', 'same file'], T1: ['exact', 'same file, metadata edited'], T2: ['exact', 'same weights (re-packaged, converted or cast)'],
    L: ['near', 'declares it as its parent'], R: ['near', 'same weights in reduced precision'], T3: ['near', 'contains a component of it'],
    T4: ['near', 'near copy (sketch cosine)'], T5: ['derived', 'derived from it'],
  };
  const LINEAGE = ['derived_from', 'base_model', 'category', 'architecture'];

  function size(n) {
    if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + ' GiB';
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MiB';
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + ' KiB';
    return n + ' bytes';
  }

  function num(x, digits) { return x === null || x === undefined ? '' : Number(x).toFixed(digits); }

  function panel(el, rep, i) {
    const m = rep.model;
    const arch = m.family + (m.variant ? ' ' + m.variant : '') + ' · ' + m.kind;
    return el('div', { class: 'model-file', id: 'model-' + i, role: 'group', 'aria-label': 'Model file (cluster ' + (i + 1) + ')' },
      el('h4', {}, rep.file_name || 'Model file'),
      el('dl', {},
        el('dt', {}, 'Size'), el('dd', { id: 'model-size-' + i }, size(m.size)),
        el('dt', {}, 'Format'), el('dd', { id: 'model-format-' + i }, m.format),
        el('dt', {}, 'Architecture'), el('dd', { id: 'model-arch-' + i }, arch),
        el('dt', {}, 'Tensors'), el('dd', {}, String(m.tensors)),
        el('dt', {}, 'Pickle'), el('dd', { class: m.verdict === 'dangerous' ? 'danger-verdict' : null }, m.verdict)),
      el('p', { class: 'viewed' }, 'A model file: no preview.'));
  }

  function what(l) {
    if (l.tier === 'T5') return (l.adapter ? 'LoRA baked in at strength ' : l.derivation + ', share ') + num(l.coefficient, 2) + ' (fit explains ' + Math.round(l.score * 100) + ' %)';
    if (l.tier === 'R') return 'cosine ' + num(l.score, 4) + ', ' + l.precision + ', estimated error ' + num(l.estimated_error, 4);
    if (l.tier === 'T3') return 'component ' + l.component + ', ' + Math.round(l.score * 100) + ' % of its rows';
    if (l.tier === 'T4') return 'cosine ' + num(l.score, 4) + ' over ' + Math.round(l.coverage * 100) + ' % of tensors';
    return l.signal || '';
  }

  function lineage(el, m, i) {
    const rows = m.links.map((l, j) => {
      const [kind, meaning] = TIERS[l.tier] || ['near', l.tier];
      const labels = Object.entries(l.labels || {}).filter(([k]) => LINEAGE.includes(k))
        .map(([k, v]) => el('span', { class: 'lineage-label' }, k + ': ' + v));
      return el('tr', { id: 'link-' + i + '-' + j },
        el('td', {}, el('span', { class: 'tier ' + kind, title: meaning }, l.tier)),
        el('td', {}, el('strong', {}, l.model), el('br'), l.bank + ' (' + l.bank_kind + ')'),
        el('td', {}, meaning, el('br'), what(l)),
        el('td', {}, labels.length ? labels : '–'));
    });
    return el('div', { class: 'table-scroll' },
      el('table', { class: 'lineage', id: 'lineage-' + i },
        el('caption', {}, 'Derives from banked models'),
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Tier'), el('th', { scope: 'col' }, 'Banked model'), el('th', { scope: 'col' }, 'How'), el('th', { scope: 'col' }, 'Lineage'))),
        el('tbody', {}, rows)));
  }

  return { panel, lineage };
})();
