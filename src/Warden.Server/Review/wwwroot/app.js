// Warden review console: plain DOM, no framework, no inline script (CSP 'self'). Data is always
// inserted as text, never as HTML.
'use strict';
(() => {
  const state = { me: null, csrf: null, caseData: null, selected: 0, poll: null, revealed: null, reportWatch: null };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  async function api(method, path, body) {
    const headers = { 'Accept': 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    const res = await fetch('/review/api' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
    if (res.status === 401 && path !== '/login') { showLogin(); throw new Error('Please log in.'); }
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error((data && data.detail) || res.statusText);
    return data;
  }

  function say(msg, isError) { const s = $('status'); s.textContent = msg || ''; s.className = isError ? 'error' : ''; }

  function showLogin() {
    state.me = null; state.csrf = null;
    $('nav').hidden = true; $('view').hidden = true; $('login').hidden = false;
    $('username').focus();
  }

  async function loadMe() {
    state.me = await api('GET', '/me');
    state.csrf = state.me.csrf;
    $('who').textContent = state.me.username + ' (' + state.me.role + ')';
    updateExposure(state.me.exposure_today);
    $('nav').hidden = false; $('login').hidden = true; $('view').hidden = false;
    $('nav-deliveries').hidden = state.me.role !== 'admin';
    await deliveryNotice();
  }

  function updateExposure(n) {
    state.me.exposure_today = n;
    $('exposure').textContent = 'Reveals today: ' + n + ' / ' + state.me.exposure_cap;
  }

  function fmt(t) { return t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '–'; }

  async function route() {
    if (state.poll) { clearTimeout(state.poll); state.poll = null; }
    if (state.revealed) { URL.revokeObjectURL(state.revealed.url); state.revealed = null; }
    if (!state.me) { try { await loadMe(); } catch { return; } }
    const h = location.hash || '#/queue';
    state.reportWatch = null;
    say('');
    try {
      if (h.startsWith('#/case/')) await showCase(decodeURIComponent(h.slice(7)));
      else if (h === '#/settings') showSettings();
      else if (h === '#/deliveries') await showDeliveries();
      else await showQueue();
    } catch (e) { say(e.message, true); }
  }

  async function showQueue() {
    const rows = await api('GET', '/queue');
    const view = $('view');
    view.replaceChildren(
      el('h2', {}, 'Queue'),
      rows.length === 0 ? el('p', {}, 'No open cases.') :
      el('div', { class: 'table-scroll' }, el('table', { id: 'queue' },
        el('caption', {}, 'Open cases, highest priority first'),
        el('thead', {}, el('tr', {}, ['Priority', 'Uploader', 'Status', 'Items', 'Clusters', 'Undecided', 'Opened'].map(x => el('th', { scope: 'col' }, x)))),
        el('tbody', {}, rows.map(r => el('tr', { 'data-case': r.id },
          el('td', {}, r.priority),
          el('td', {}, el('a', { href: '#/case/' + encodeURIComponent(r.id), class: 'case-link' }, r.uploader_id)),
          el('td', {}, r.status), el('td', {}, r.items), el('td', {}, r.clusters), el('td', {}, r.undecided), el('td', {}, fmt(r.opened_at))))))));
    document.title = 'Queue – Warden review';
    const first = view.querySelector('a.case-link'); if (first) first.focus(); else $('main').focus();
  }

  // The server sends an obscured derivative (reduced, blurred, greyscale by setting); this CSS class is only
  // an extra layer on top of it, never the protection.
  function filterClass() {
    const b = state.me.blur, g = state.me.greyscale;
    return b && g ? 'obscured' : b ? 'blur-only' : g ? 'grey-only' : '';
  }

  function mediaUrl(k, item) { return '/review/api/cases/' + encodeURIComponent(k.id) + '/items/' + encodeURIComponent(item) + '/media'; }

  async function showCase(id) {
    if (state.revealed) { URL.revokeObjectURL(state.revealed.url); state.revealed = null; }
    const k = await api('GET', '/cases/' + encodeURIComponent(id));
    state.caseData = k;
    if (state.selected >= k.clusters.length) state.selected = 0;
    const view = $('view');
    const open = k.status === 'open' || k.status === 'decided';
    view.replaceChildren(...[
      el('p', {}, el('a', { href: '#/queue' }, '← Queue')),
      el('h2', {}, 'Case of uploader ', el('span', { class: 'mono' }, k.uploader_id)),
      el('dl', {},
        el('dt', {}, 'Status'), el('dd', { id: 'case-status' }, k.status),
        el('dt', {}, 'Priority'), el('dd', {}, k.priority),
        el('dt', {}, 'Items'), el('dd', {}, k.items + ' in ' + k.clusters.length + ' cluster(s)'),
        el('dt', {}, 'Upload IPs'), el('dd', { class: 'mono' }, k.ips.join(', ') || '–'),
        el('dt', {}, 'URLs'), el('dd', { class: 'mono' }, k.urls.join(' ') || '–'),
        el('dt', {}, 'Opened'), el('dd', {}, fmt(k.opened_at))),
      state.me.preservation ? null : el('p', { class: 'badge' }, 'Evidence preservation is off: decide by hash; the record says no one viewed the media.'),
      el('div', { id: 'clusters' }, k.clusters.map((c, i) => clusterView(k, c, i, open))),
      reportView(k)].filter(Boolean));
    document.title = 'Case ' + k.uploader_id + ' – Warden review';
    select(state.selected, false);
    $('main').focus();
    // After "File report" the message follows the delivery's real state on each poll, never a sticky "queued".
    if (k.report && state.reportWatch === k.id) say(...reportMessage(k.report));
    if (k.report && !['finished', 'failed', 'dead_lettered', 'cancelled'].includes(k.report.status)) {
      state.poll = setTimeout(() => { if (location.hash === '#/case/' + encodeURIComponent(id)) showCase(id).catch(e => say(e.message, true)); }, 1000);
    }
  }

  function clusterView(k, c, i, open) {
    const rep = c.representative;
    const cls = filterClass();
    const media = rep.item
      ? el('img', { class: 'media ' + cls, id: 'media-' + i, alt: 'Matched media, obscured preview (cluster ' + (i + 1) + ')', src: mediaUrl(k, rep.item) })
      : el('div', { class: 'nomedia' }, 'No media stored (signals only).');
    const decided = c.decision
      ? el('p', { class: 'decided' }, 'Decided: ', c.decision.verdict === 'confirmed' ? 'confirmed ' + (c.decision.classification || '') : 'false positive',
          ' by ', c.decision.reviewer, ' at ', fmt(c.decision.at), c.decision.decided_without_viewing ? ' (without viewing)' : ' (viewed)')
      : null;
    const form = open && !c.decision ? decisionForm(k, c, i) : null;
    return el('section', { class: 'cluster', id: 'cluster-' + i, 'aria-label': 'Cluster ' + (i + 1) },
      el('div', {}, media,
        rep.item ? el('button', { type: 'button', class: 'secondary reveal', id: 'reveal-' + i, onclick: () => toggleReveal(k, c, i) }, 'Reveal (r)') : null,
        c.viewed_by_me ? el('p', { class: 'viewed', id: 'viewed-' + i }, 'You revealed this before.') : null),
      el('div', {},
        el('h3', {}, 'Cluster ' + (i + 1) + ': ' + c.count + ' item(s)'),
        el('p', {}, 'Matched: ', rep.matches.map(m => el('span', { class: 'badge' }, m.bank + ' · ' + m.signal_type + ' d=' + m.distance + (Object.keys(m.labels).length ? ' · ' + Object.entries(m.labels).map(([a, b]) => a + '=' + b).join(', ') : '')))),
        el('p', {}, 'Received ', fmt(rep.received_at), rep.ip ? ' from ' + rep.ip : '', rep.file_name ? ' · ' + rep.file_name : ''),
        el('p', { class: 'mono' }, 'PDQ ', rep.pdq || '–', el('br'), 'SHA-256 ', rep.hashes.sha256 || '–'),
        decided, form));
  }

  function decisionForm(k, c, i) {
    const cid = 'cls-' + i, iid = 'inc-' + i, nid = 'note-' + i;
    const f = el('form', { class: 'decision', id: 'decision-' + i, onsubmit: (e) => { e.preventDefault(); decide(k, c, i, 'confirmed'); } },
      el('label', { for: cid }, 'Industry classification'),
      el('select', { id: cid, name: 'classification' }, el('option', { value: '' }, '(none)'), state.me.classifications.map(x => el('option', { value: x }, x))),
      el('fieldset', {}, el('legend', {}, 'NCMEC file annotations'),
        state.me.annotations.map(a => el('label', { class: 'inline' }, el('input', { type: 'checkbox', name: 'annotation', value: a }), ' ' + a))),
      el('label', { for: iid }, 'Incident type'),
      el('select', { id: iid, name: 'incident' }, el('option', { value: '' }, '(default)'), state.me.incident_types.map(x => el('option', { value: x }, x))),
      el('label', { for: nid }, 'Note'),
      el('input', { id: nid, name: 'note', maxlength: '500' }),
      el('div', {},
        el('button', { type: 'submit', id: 'confirm-' + i }, 'Confirm (c)'), ' ',
        el('button', { type: 'button', class: 'danger', id: 'fp-' + i, onclick: () => decide(k, c, i, 'false_positive') }, 'False positive (f)')));
    return f;
  }

  // Reveal: the server logs the view, counts it, and grants one fetch of the original; the picture is held
  // as a blob URL only while shown. Re-obscure drops it and returns to the server-made derivative.
  async function toggleReveal(k, c, i) { if (state.revealed && state.revealed.i === i) reobscure(); else await reveal(k, c, i); }

  async function reveal(k, c, i) {
    if (!c.representative.item) return;
    reobscure(false); // locally only: a POST /obscure racing this reveal could drop its new grant
    try {
      const r = await api('POST', '/cases/' + encodeURIComponent(k.id) + '/items/' + encodeURIComponent(c.representative.item) + '/reveal');
      updateExposure(r.exposure_today);
      const res = await fetch(r.original_url, { credentials: 'same-origin' });
      if (!res.ok) throw new Error('The original could not be fetched (' + res.status + '); reveal again.');
      const url = URL.createObjectURL(await res.blob());
      const img = $('media-' + i); img.src = url; img.className = 'media revealed'; img.alt = 'Matched media, revealed (cluster ' + (i + 1) + ')';
      state.revealed = { i, url, item: c.representative.item, k };
      c.viewed_by_me = true;
      const b = $('reveal-' + i); b.textContent = 'Re-obscure (r)';
      say('Revealed; the view is logged.');
    } catch (e) { say(e.message, true); }
  }

  function reobscure(tellServer) {
    const r = state.revealed; if (!r) return;
    state.revealed = null;
    const img = $('media-' + r.i);
    if (img) { img.src = mediaUrl(r.k, r.item); img.className = 'media ' + filterClass(); img.alt = 'Matched media, obscured preview (cluster ' + (r.i + 1) + ')'; }
    URL.revokeObjectURL(r.url);
    const b = $('reveal-' + r.i); if (b) b.textContent = 'Reveal (r)';
    if (tellServer !== false) { api('POST', '/obscure').catch(() => { /* nothing held */ }); say('Obscured again.'); }
  }

  async function decide(k, c, i, verdict) {
    const f = $('decision-' + i);
    if (!f) return;
    const body = verdict === 'confirmed'
      ? { verdict, classification: f.classification.value || null, annotations: [...f.querySelectorAll('input[name=annotation]:checked')].map(x => x.value), incident_type: f.incident.value || null, note: f.note.value || null }
      : { verdict, incident_type: null, note: f.note.value || null };
    try {
      await api('POST', '/cases/' + encodeURIComponent(k.id) + '/clusters/' + encodeURIComponent(c.id) + '/decision', body);
      say('Decision saved.');
      const next = k.clusters.findIndex((x, j) => j > i && !x.decision);
      if (next >= 0) state.selected = next;
      await showCase(k.id);
    } catch (e) { say(e.message, true); }
  }

  function reportView(k) {
    const all = k.clusters.every(c => c.decision);
    const confirmed = k.clusters.some(c => c.decision && c.decision.verdict === 'confirmed');
    const box = el('section', { id: 'report', 'aria-label': 'Report' }, el('h3', {}, 'CyberTipline report'));
    if (k.report) {
      const r = k.report;
      box.append(
        el('dl', {},
          el('dt', {}, 'Status'), el('dd', { id: 'report-status' }, r.status),
          el('dt', {}, 'Environment'), el('dd', {}, r.environment),
          el('dt', {}, 'Report id'), el('dd', { id: 'report-id' }, r.report_id || '–'),
          el('dt', {}, 'Files'), el('dd', {}, r.files.map(f => f.file_name + (f.file_id ? ' → ' + f.file_id : '')).join(', ') || 'none (signals only)'),
          r.last_error ? [el('dt', {}, 'Last error'), el('dd', { class: 'error' }, r.last_error)] : null),
        el('h4', {}, 'Responses'),
        el('div', { class: 'table-scroll' }, el('table', { id: 'receipts' }, el('thead', {}, el('tr', {}, ['Time', 'Step', 'Outcome', 'HTTP', 'Code'].map(x => el('th', { scope: 'col' }, x)))),
          el('tbody', {}, r.receipts.map(x => el('tr', {}, el('td', {}, fmt(x.at)), el('td', {}, x.step), el('td', {}, x.outcome), el('td', {}, x.http_status ?? ''), el('td', {}, x.response_code ?? '')))))),
        el('details', {}, el('summary', {}, 'Report XML'), el('pre', { id: 'report-xml' }, r.document)));
    } else if (all && confirmed) {
      box.append(el('button', { type: 'button', id: 'file-report', onclick: () => fileReport(k) }, 'File report'));
    } else if (all) {
      box.append(el('p', {}, 'Every cluster is a false positive.'), el('button', { type: 'button', id: 'close-case', onclick: () => closeCase(k) }, 'Close case'));
    } else {
      box.append(el('p', {}, 'Decide every cluster to file a report.'));
    }
    return box;
  }

  function reportMessage(r) {
    switch (r.status) {
      case 'queued': return ['Report queued for delivery.'];
      case 'open': return ['Report being sent to the CyberTipline' + (r.report_id ? ' (report ' + r.report_id + ')' : '') + '.'];
      case 'retracting': return ['Report being retracted.'];
      case 'finished': return ['Report delivered: CyberTipline report ' + (r.report_id || '–') + '.'];
      case 'cancelled': return ['Report delivery cancelled.'];
      case 'failed': case 'dead_lettered': return ['Report delivery ' + r.status.replace('_', '-') + (r.last_error ? ': ' + r.last_error : '.'), true];
      default: return ['Report status: ' + r.status + '.'];
    }
  }

  async function fileReport(k) {
    try { await api('POST', '/cases/' + encodeURIComponent(k.id) + '/report'); state.reportWatch = k.id; await showCase(k.id); }
    catch (e) { say(e.message, true); }
  }

  async function closeCase(k) {
    try { await api('POST', '/cases/' + encodeURIComponent(k.id) + '/close'); location.hash = '#/queue'; }
    catch (e) { say(e.message, true); }
  }

  function showSettings() {
    const m = state.me;
    const num = (id) => { const v = $(id).value; return v === '' ? null : Number(v); };
    const form = el('form', { id: 'settings-form', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const body = { blur: $('set-blur').checked, greyscale: $('set-grey').checked, blur_percent: num('set-strength'), size: num('set-size') };
        await api('PUT', '/settings', body);
        Object.assign(state.me, await api('GET', '/me'));
        say('Saved.');
      } catch (err) { say(err.message, true); }
    } },
      el('label', {}, el('input', { type: 'checkbox', id: 'set-blur', checked: m.blur || null }), ' Blur media by default (organisation default: ' + (m.org_blur ? 'on' : 'off') + '; off still blurs at the minimum of ' + m.min_blur_percent + ' %)'),
      el('label', { for: 'set-strength' }, 'Blur strength when on, percent of the image size (' + m.min_blur_percent + '–25; empty: organisation default ' + m.org_blur_percent + ')'),
      el('input', { id: 'set-strength', type: 'number', min: String(m.min_blur_percent), max: '25', step: '1', value: m.blur_percent === null ? '' : String(m.blur_percent) }),
      el('label', {}, el('input', { type: 'checkbox', id: 'set-grey', checked: m.greyscale || null }), ' Greyscale media by default (organisation default: ' + (m.org_greyscale ? 'on' : 'off') + ')'),
      el('label', { for: 'set-size' }, 'Preview size, pixels (32–' + m.max_size + '; empty: ' + m.max_size + ')'),
      el('input', { id: 'set-size', type: 'number', min: '32', max: String(m.max_size), step: '1', value: m.size === null ? '' : String(m.size) }),
      el('button', { type: 'submit' }, 'Save'));
    $('view').replaceChildren(el('h2', {}, 'Settings'), form,
      el('p', {}, 'Previews are made on the server: reduced, blurred and greyscale as set here. The original is sent only after a Reveal, which is logged, counted and reported as viewed.'),
      el('p', {}, 'Daily reveal cap: ' + m.exposure_cap + '. Known-hash matches may be decided without viewing: ' + (m.decide_without_viewing ? 'yes' : 'no') + '.'));
    document.title = 'Settings – Warden review';
  }

  // ---- Report deliveries (admins): dead-lettered and failed reports wait here for a requeue or a cancel. ----
  async function deliveryNotice() {
    const n = $('notice');
    if (!state.me || state.me.role !== 'admin') { n.hidden = true; return null; }
    const data = await api('GET', '/deliveries?status=dead_lettered&limit=1');
    n.replaceChildren();
    if (data.attention > 0) {
      n.append(data.attention + ' report deliver' + (data.attention === 1 ? 'y needs' : 'ies need') + ' attention (dead-lettered or failed). ',
        el('a', { href: '#/deliveries' }, 'Open deliveries'));
    }
    n.hidden = data.attention === 0;
    return data;
  }

  async function showDeliveries() {
    if (state.me.role !== 'admin') { say('Report deliveries are for admins.', true); return; }
    const filter = new URLSearchParams(location.search).get('status') || '';
    const data = await api('GET', '/deliveries' + (filter ? '?status=' + encodeURIComponent(filter) : ''));
    await deliveryNotice();
    const action = async (d, verb) => {
      const reason = prompt((verb === 'cancel' ? 'Cancel' : 'Requeue') + ' delivery ' + d.id + ': reason (kept in the audit log)');
      if (reason === null) return;
      try { await api('POST', '/deliveries/' + d.id + '/' + verb, { reason }); say('Delivery ' + d.id + ': ' + verb + ' done.'); await showDeliveries(); }
      catch (e) { say(e.message, true); }
    };
    $('view').replaceChildren(
      el('h2', {}, 'Report deliveries'),
      el('p', {}, 'Dead-lettered and failed deliveries wait for an admin: requeue once the cause is fixed, or cancel (an open report is retracted).'),
      el('div', { class: 'table-scroll' }, el('table', { id: 'deliveries' },
        el('caption', {}, 'Newest first'),
        el('thead', {}, el('tr', {}, ['Id', 'Case', 'Status', 'Report id', 'Failing step', 'Last error', 'Actions'].map(x => el('th', { scope: 'col' }, x)))),
        el('tbody', {}, data.deliveries.map(d => el('tr', { 'data-delivery': d.id, class: d.needs_attention ? 'attention' : null },
          el('td', {}, d.id),
          el('td', { class: 'mono' }, el('a', { href: '#/case/' + encodeURIComponent(d.case_id) }, d.case_id)),
          el('td', {}, d.status),
          el('td', {}, d.report_id || '–'),
          el('td', {}, d.failing_step ? d.failing_step + ' ×' + d.failures : '–'),
          el('td', { class: 'error' }, d.last_error || ''),
          el('td', {},
            ['failed', 'dead_lettered', 'cancelled'].includes(d.status) ? el('button', { type: 'button', class: 'secondary', id: 'requeue-' + d.id, onclick: () => action(d, 'requeue') }, 'Requeue') : null, ' ',
            ['finished', 'cancelled'].includes(d.status) ? null : el('button', { type: 'button', class: 'danger', id: 'cancel-' + d.id, onclick: () => action(d, 'cancel') }, 'Cancel'))))))));
    document.title = 'Deliveries – Warden review';
    $('main').focus();
  }

  function select(i, scroll) {
    const k = state.caseData; if (!k || !k.clusters.length) return;
    state.selected = Math.max(0, Math.min(k.clusters.length - 1, i));
    document.querySelectorAll('.cluster').forEach((n, j) => n.classList.toggle('selected', j === state.selected));
    if (scroll !== false) { const n = $('cluster-' + state.selected); n.scrollIntoView({ block: 'nearest' }); n.querySelector('button, select') ?.focus(); }
  }

  document.addEventListener('keydown', (e) => {
    if (!state.me || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target.tagName;
    if (t === 'INPUT' || t === 'TEXTAREA' || (t === 'SELECT' && !/^[1-4]$/.test(e.key))) return;
    const k = state.caseData;
    const onCase = location.hash.startsWith('#/case/') && k;
    if (e.key === 'g') { location.hash = '#/queue'; return; }
    if (e.key === '?') { say('Keys: j/k next/previous cluster, r reveal or re-obscure, 1–4 classification, c confirm, f false positive, g queue.'); return; }
    if (!onCase) return;
    const i = state.selected, c = k.clusters[i];
    if (e.key === 'j') select(i + 1);
    else if (e.key === 'k') select(i - 1);
    else if (e.key === 'r') toggleReveal(k, c, i);
    else if (/^[1-4]$/.test(e.key) && $('cls-' + i)) { $('cls-' + i).value = state.me.classifications[Number(e.key) - 1]; say('Classification ' + $('cls-' + i).value); e.preventDefault(); }
    else if (e.key === 'c') decide(k, c, i, 'confirmed');
    else if (e.key === 'f') decide(k, c, i, 'false_positive');
  });

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      $('login-error').textContent = '';
      try {
        const r = await api('POST', '/login', { username: $('username').value, password: $('password').value });
        state.csrf = r.csrf; $('password').value = '';
        await loadMe(); await route();
      } catch (err) { $('login-error').textContent = err.message; }
    });
    $('logout').addEventListener('click', async () => { try { await api('POST', '/logout'); } catch { /* already out */ } showLogin(); });
    window.addEventListener('hashchange', route);
    route();
  });
})();
