// Warden review console: plain DOM, no framework, no inline script (CSP 'self'). Data is always
// inserted as text, never as HTML.
'use strict';
(() => {
  const state = { me: null, csrf: null, caseData: null, selected: 0, poll: null, revealed: null, reportWatch: null, claimed: null, heartbeat: null };
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
    $('nav-users').hidden = state.me.role !== 'admin';
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
    if (!h.startsWith('#/case/')) stopHeartbeat();
    state.reportWatch = null;
    say('');
    try {
      if (h.startsWith('#/case/')) await showCase(decodeURIComponent(h.slice(7)));
      else if (h === '#/settings') showSettings();
      else if (h === '#/deliveries') await showDeliveries();
      else if (h === '#/users') await showUsers();
      else await showQueue();
    } catch (e) { say(e.message, true); }
  }

  // ---- Queue and history: filters, sort and paging run on the server; the hash keeps them (#/queue?status=closed&…). ----
  const queueFields = ['status', 'priority_min', 'bank', 'label', 'ai', 'min_age_hours', 'max_age_hours', 'uploader', 'hash', 'report_id', 'sort', 'order', 'offset'];

  function queueParams() {
    const h = location.hash || '#/queue';
    const q = h.indexOf('?');
    return new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
  }

  function goQueue(p) {
    const clean = new URLSearchParams();
    for (const [k, v] of p) if (v !== '' && v !== null) clean.set(k, v);
    const s = clean.toString();
    location.hash = '#/queue' + (s ? '?' + s : '');
  }

  function claimText(c) { return c ? c.by + ' since ' + fmt(c.since).slice(11, 16) + ' UTC' : ''; }

  async function showQueue() {
    const p = queueParams();
    const data = await api('GET', '/cases?' + p.toString());
    const closed = (p.get('status') || 'open') !== 'open';
    const input = (name, label, attrs) => [el('label', { for: 'q-' + name }, label), el('input', Object.assign({ id: 'q-' + name, name, value: p.get(name) || '' }, attrs || {}))];
    const choice = (name, label, options) => [el('label', { for: 'q-' + name }, label),
      el('select', { id: 'q-' + name, name }, options.map(([v, t]) => el('option', { value: v, selected: (p.get(name) || '') === v ? true : null }, t)))];
    const form = el('form', { id: 'queue-filters', class: 'filters', onsubmit: (e) => {
      e.preventDefault();
      const f = new URLSearchParams();
      for (const n of queueFields) { const x = e.target.elements[n]; if (x && x.value.trim() !== '') f.set(n, x.value.trim()); }
      f.delete('offset');
      goQueue(f);
    } },
      el('div', {}, choice('status', 'Cases', [['', 'Open (queue)'], ['closed', 'Closed (history)'], ['all', 'All']])),
      el('div', {}, input('priority_min', 'Priority ≥', { type: 'number', min: '0', max: '100', step: '1' })),
      el('div', {}, input('bank', 'Bank')),
      el('div', {}, input('label', 'Label (key or key=value)', { placeholder: 'classification=A1' })),
      el('div', {}, choice('ai', 'AI-linked', [['', 'Any'], ['true', 'Yes'], ['false', 'No']])),
      el('div', {}, input('min_age_hours', 'Older than (h)', { type: 'number', min: '0', step: '1' })),
      el('div', {}, input('max_age_hours', 'Newer than (h)', { type: 'number', min: '0', step: '1' })),
      el('div', {}, input('uploader', 'Uploader')),
      el('div', {}, input('hash', 'Hash (PDQ, SHA-256, MD5)', { class: 'mono', maxlength: '64' })),
      el('div', {}, input('report_id', 'Report id')),
      el('div', {}, choice('sort', 'Sort by', [['', closed ? 'Last change' : 'Priority'], ['priority', 'Priority'], ['opened', 'Age'], ['updated', 'Last change'], ['items', 'Items']])),
      el('div', {}, choice('order', 'Order', [['', 'Default'], ['desc', 'Descending'], ['asc', 'Ascending']])),
      el('div', { class: 'filter-actions' }, el('button', { type: 'submit', id: 'q-apply' }, 'Apply'), ' ',
        el('button', { type: 'button', class: 'secondary', id: 'q-reset', onclick: () => goQueue(new URLSearchParams(closed ? 'status=closed' : '')) }, 'Reset')));
    const first = data.total === 0 ? 0 : data.offset + 1, last = data.offset + data.cases.length;
    const page = (offset) => { const f = new URLSearchParams(p); f.set('offset', String(offset)); goQueue(f); };
    const pager = el('nav', { class: 'pager', 'aria-label': 'Pages' },
      el('span', { id: 'q-range' }, first + '–' + last + ' of ' + data.total), ' ',
      el('button', { type: 'button', class: 'secondary', id: 'q-prev', disabled: data.offset === 0 ? true : null, onclick: () => page(Math.max(0, data.offset - data.limit)) }, '← Previous'), ' ',
      el('button', { type: 'button', class: 'secondary', id: 'q-next', disabled: data.next_offset === null ? true : null, onclick: () => page(data.next_offset) }, 'Next →'));
    const heads = ['Priority', 'Uploader', 'Status', 'Items', 'Clusters', 'Undecided', 'Opened', closed ? 'Report' : 'Claimed by'];
    const view = $('view');
    view.replaceChildren(
      el('h2', {}, closed ? 'Case history' : 'Queue'),
      form,
      data.cases.length === 0 ? el('p', { id: 'q-empty' }, closed ? 'No closed cases match.' : 'No open cases match.') :
      el('div', { class: 'table-scroll' }, el('table', { id: 'queue' },
        el('caption', {}, closed ? 'Closed cases' : 'Open cases', ', sorted by ', data.sort, ' (', data.order, ')'),
        el('thead', {}, el('tr', {}, heads.map(x => el('th', { scope: 'col' }, x)))),
        el('tbody', {}, data.cases.map(r => el('tr', { 'data-case': r.id },
          el('td', {}, r.priority, r.ai ? el('span', { class: 'badge', title: 'AI provenance' }, ' AI') : null),
          el('td', {}, el('a', { href: '#/case/' + encodeURIComponent(r.id), class: 'case-link' }, r.uploader_id)),
          el('td', {}, r.status), el('td', {}, r.items), el('td', {}, r.clusters), el('td', {}, r.undecided), el('td', {}, fmt(r.opened_at)),
          el('td', { class: closed ? 'report-cell' : 'claim-cell' }, closed ? (r.report ? r.report.status + (r.report.report_id ? ' · ' + r.report.report_id : '') : 'closed, no report') : claimText(r.claim))))))),
      pager);
    document.title = (closed ? 'History' : 'Queue') + ' – Warden review';
    const firstLink = view.querySelector('a.case-link'); if (firstLink) firstLink.focus(); else $('main').focus();
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
    let k = await api('GET', '/cases/' + encodeURIComponent(id));
    const open0 = k.status === 'open' || k.status === 'decided';
    // Opening a case claims it (one reviewer at a time); the claim is renewed while the case stays on screen.
    if (open0 && state.claimed !== k.id) {
      try { await api('POST', '/cases/' + encodeURIComponent(k.id) + '/claim'); state.claimed = k.id; startHeartbeat(k); }
      catch (e) { say(e.message, true); }
      k = await api('GET', '/cases/' + encodeURIComponent(id));
    }
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
      claimView(k, open),
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

  function mine(k) { return k.claim && k.claim.by === state.me.username; }

  function claimView(k, open) {
    if (!open) return null;
    const box = el('p', { id: 'claim', class: mine(k) ? 'claim mine' : 'claim other' });
    if (!k.claim) box.append('Not claimed. ', el('button', { type: 'button', class: 'secondary', id: 'claim-btn', onclick: () => claim(k) }, 'Claim'));
    else if (mine(k)) box.append('Claimed by you since ' + fmt(k.claim.since) + ' (renewed while open). ', el('button', { type: 'button', class: 'secondary', id: 'release-btn', onclick: () => release(k) }, 'Release'));
    else box.append('Claimed by ' + k.claim.by + ' since ' + fmt(k.claim.since) + ': only they can decide until they release it or the claim lapses at ' + fmt(k.claim.until) + '.',
      state.me.role === 'admin' ? el('button', { type: 'button', class: 'danger', id: 'release-btn', onclick: () => release(k) }, 'Release their claim') : null);
    return box;
  }

  async function claim(k) {
    try { await api('POST', '/cases/' + encodeURIComponent(k.id) + '/claim'); state.claimed = k.id; startHeartbeat(k); say('Claimed.'); await showCase(k.id); }
    catch (e) { say(e.message, true); }
  }

  async function release(k) {
    try { await api('POST', '/cases/' + encodeURIComponent(k.id) + '/release'); if (state.claimed === k.id) stopHeartbeat(); say('Claim released.'); await showCase(k.id); }
    catch (e) { say(e.message, true); }
  }

  function startHeartbeat(k) {
    if (state.heartbeat) clearInterval(state.heartbeat);
    const every = Math.max(20, Math.min(300, (k.claim_minutes || 15) * 20)) * 1000; // a third of the lease
    state.heartbeat = setInterval(() => { if (state.claimed) api('POST', '/cases/' + encodeURIComponent(state.claimed) + '/claim').catch(() => stopHeartbeat()); }, every);
  }

  function stopHeartbeat() { if (state.heartbeat) clearInterval(state.heartbeat); state.heartbeat = null; state.claimed = null; }

  async function showMembers(k, c, i) {
    const box = $('members-' + i);
    if (!box.hidden && box.childElementCount) {
      if (state.revealed && state.revealed.key.startsWith('m' + i + '-')) reobscure(); // a hidden member is never left revealed
      box.hidden = true; $('members-btn-' + i).textContent = 'Show all ' + c.count + ' members'; return;
    }
    try {
      const data = await api('GET', '/cases/' + encodeURIComponent(k.id) + '/clusters/' + encodeURIComponent(c.id) + '/members?limit=200');
      const cls = filterClass();
      box.replaceChildren(el('p', {}, data.total + ' member(s); a PDQ within ' + data.threshold + ' bits of the representative, or an identical digest, joins a cluster.'),
        el('ul', { class: 'members' }, data.members.map((m, j) => el('li', { class: 'member', id: 'member-' + i + '-' + j },
          m.item ? el('img', { class: 'thumb ' + cls, id: 'member-media-' + i + '-' + j, alt: 'Member ' + (j + 1) + ', obscured preview', src: mediaUrl(k, m.item), loading: 'lazy' }) : el('div', { class: 'nomedia thumb' }, 'No media'),
          // Each member is revealed on its own: counted against the daily cap, logged and audited like any reveal.
          m.item ? el('button', { type: 'button', class: 'secondary reveal', id: 'member-reveal-' + i + '-' + j, onclick: () => toggleTarget(memberTarget(k, m, i, j)) }, 'Reveal') : null,
          el('p', { class: 'why' }, m.why), el('p', { class: 'viewed' }, fmt(m.received_at), m.file_name ? ' · ' + m.file_name : ''),
          el('p', { class: 'viewed', id: 'member-viewed-' + i + '-' + j, hidden: m.viewed_by_me ? null : true }, 'You revealed this before.')))),
        data.total > data.members.length ? el('p', {}, 'The first ' + data.members.length + ' are shown.') : '');
      box.hidden = false;
      $('members-btn-' + i).textContent = 'Hide members';
    } catch (e) { say(e.message, true); }
  }

  async function undo(k, c, i) {
    try {
      const r = await api('POST', '/cases/' + encodeURIComponent(k.id) + '/clusters/' + encodeURIComponent(c.id) + '/undo');
      state.selected = i;
      await showCase(k.id);
      say('Cluster ' + (i + 1) + ': ' + r.message); // says what was recalled and what had already gone out
    } catch (e) { say(e.message, true); }
  }

  function clusterView(k, c, i, open) {
    const rep = c.representative;
    const cls = filterClass();
    // A model file is described (file, size, format, lineage), never previewed: models.js draws it.
    const media = rep.model ? window.WardenModels.panel(el, rep, i)
      : rep.item
      ? el('img', { class: 'media ' + cls, id: 'media-' + i, alt: 'Matched media, obscured preview (cluster ' + (i + 1) + ')', src: mediaUrl(k, rep.item) })
      : el('div', { class: 'nomedia' }, 'No media stored (signals only).');
    const decided = c.decision
      ? el('p', { class: 'decided' }, 'Decided: ', c.decision.verdict === 'confirmed' ? 'confirmed ' + (c.decision.classification || '') : 'false positive',
          ' by ', c.decision.reviewer, ' at ', fmt(c.decision.at), c.decision.decided_without_viewing ? ' (without viewing)' : ' (viewed)')
      : null;
    // Someone else's live claim: their case to decide; the page says who (claimView) instead of offering buttons that would be refused.
    const free = !k.claim || mine(k);
    const form = open && !c.decision && free ? decisionForm(k, c, i) : null;
    const canUndo = open && c.decision && !k.report && free;
    return el('section', { class: 'cluster', id: 'cluster-' + i, 'aria-label': 'Cluster ' + (i + 1) },
      el('div', {}, media,
        rep.item && !rep.model ? el('button', { type: 'button', class: 'secondary reveal', id: 'reveal-' + i, onclick: () => toggleReveal(k, c, i) }, 'Reveal (r)') : null,
        c.viewed_by_me ? el('p', { class: 'viewed', id: 'viewed-' + i }, 'You revealed this before.') : null),
      el('div', {},
        el('h3', {}, 'Cluster ' + (i + 1) + ': ' + c.count + ' item(s)'),
        el('p', {}, 'Matched: ', rep.matches.map(m => el('span', { class: 'badge' }, m.bank + ' · ' + m.signal_type + ' d=' + m.distance + (Object.keys(m.labels).length ? ' · ' + Object.entries(m.labels).map(([a, b]) => a + '=' + b).join(', ') : '')))),
        rep.model ? window.WardenModels.lineage(el, rep.model, i) : null,
        el('p', {}, 'Received ', fmt(rep.received_at), rep.ip ? ' from ' + rep.ip : '', rep.file_name ? ' · ' + rep.file_name : ''),
        el('p', { class: 'mono' }, 'PDQ ', rep.pdq || '–', el('br'), 'SHA-256 ', rep.hashes.sha256 || '–'),
        decided,
        canUndo ? el('button', { type: 'button', class: 'secondary', id: 'undo-' + i, onclick: () => undo(k, c, i) }, 'Undo decision') : null,
        form,
        c.count > 1 ? el('button', { type: 'button', class: 'secondary', id: 'members-btn-' + i, onclick: () => showMembers(k, c, i) }, 'Show all ' + c.count + ' members') : null,
        el('div', { id: 'members-' + i, class: 'member-list', hidden: true })));
  }

  function decisionForm(k, c, i) {
    const cid = 'cls-' + i, iid = 'inc-' + i, nid = 'note-' + i;
    const f = el('form', { class: 'decision', id: 'decision-' + i, onsubmit: (e) => { e.preventDefault(); decide(k, c, i, 'confirmed'); } },
      el('label', { for: cid }, 'Industry classification'),
      el('select', { id: cid, name: 'classification' }, el('option', { value: '' }, '(none)'), state.me.classifications.map(x => el('option', { value: x, selected: x === c.suggested_classification ? true : null }, x))),
      c.suggested_classification ? el('p', { class: 'viewed', id: 'cls-hint-' + i }, 'Pre-filled from the matched bank labels; check it against the media.') : null,
      el('fieldset', {}, el('legend', {}, 'NCMEC file annotations'),
        state.me.annotations.map(a => el('label', { class: 'inline' }, el('input', { type: 'checkbox', name: 'annotation', value: a, checked: (c.suggested_annotations || []).includes(a) ? true : null }), ' ' + a))),
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
  // as a blob URL only while shown. Re-obscure drops it and returns to the server-made derivative. A target is
  // a cluster's representative or one member in the member view; one is revealed at a time (the server holds
  // one grant per person, and a new reveal replaces it).
  function clusterTarget(k, c, i) {
    return { key: 'c' + i, k, item: c.representative.item, img: 'media-' + i, btn: 'reveal-' + i, base: 'media', keys: ' (r)',
      obscuredAlt: 'Matched media, obscured preview (cluster ' + (i + 1) + ')', revealedAlt: 'Matched media, revealed (cluster ' + (i + 1) + ')',
      seen: () => { c.viewed_by_me = true; } };
  }

  function memberTarget(k, m, i, j) {
    return { key: 'm' + i + '-' + j, k, item: m.item, img: 'member-media-' + i + '-' + j, btn: 'member-reveal-' + i + '-' + j, base: 'thumb', keys: '',
      obscuredAlt: 'Member ' + (j + 1) + ', obscured preview', revealedAlt: 'Member ' + (j + 1) + ', revealed',
      seen: () => { m.viewed_by_me = true; const v = $('member-viewed-' + i + '-' + j); if (v) v.hidden = false; } };
  }

  async function toggleReveal(k, c, i) { if (c.representative.item) await toggleTarget(clusterTarget(k, c, i)); }

  async function toggleTarget(t) { if (state.revealed && state.revealed.key === t.key) reobscure(); else await reveal(t); }

  async function reveal(t) {
    if (!t.item) return;
    reobscure(false); // locally only: a POST /obscure racing this reveal could drop its new grant
    try {
      const r = await api('POST', '/cases/' + encodeURIComponent(t.k.id) + '/items/' + encodeURIComponent(t.item) + '/reveal');
      updateExposure(r.exposure_today);
      const res = await fetch(r.original_url, { credentials: 'same-origin' });
      if (!res.ok) throw new Error('The original could not be fetched (' + res.status + '); reveal again.');
      const url = URL.createObjectURL(await res.blob());
      const img = $(t.img); img.src = url; img.className = t.base + ' revealed'; img.alt = t.revealedAlt;
      state.revealed = Object.assign({ url }, t);
      t.seen();
      const b = $(t.btn); b.textContent = 'Re-obscure' + t.keys;
      say('Revealed; the view is logged.');
    } catch (e) { say(e.message, true); }
  }

  function reobscure(tellServer) {
    const r = state.revealed; if (!r) return;
    state.revealed = null;
    const img = $(r.img);
    if (img) { img.src = mediaUrl(r.k, r.item); img.className = r.base + ' ' + filterClass(); img.alt = r.obscuredAlt; }
    URL.revokeObjectURL(r.url);
    const b = $(r.btn); if (b) b.textContent = 'Reveal' + r.keys;
    if (tellServer !== false) { api('POST', '/obscure', { case_id: r.k.id, item: r.item }).catch(() => { /* nothing held */ }); say('Obscured again.'); }
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

  // ---- Users (admins): disable (their sessions end at once), enable, reset a password. ----
  async function showUsers() {
    if (state.me.role !== 'admin') { say('User administration is for admins.', true); return; }
    const users = await api('GET', '/admin/users');
    const act = async (u, verb) => {
      try {
        if (verb === 'password') {
          const given = prompt('New password for ' + u.username + ' (at least 12 characters; leave empty to generate one)');
          if (given === null) return;
          const r = await api('POST', '/admin/users/' + encodeURIComponent(u.username) + '/password', { password: given === '' ? null : given });
          await showUsers();
          if (r.password) $('view').append(el('p', { id: 'new-password', class: 'badge' }, 'New password for ' + u.username + ' (shown once): ', el('span', { class: 'mono' }, r.password)));
          say('Password reset; ' + u.username + "'s sessions ended.");
          return;
        }
        await api('POST', '/admin/users/' + encodeURIComponent(u.username) + '/' + verb);
        await showUsers();
        say(verb === 'disable' ? u.username + ' disabled; their sessions ended.' : u.username + ' enabled.');
      } catch (e) { say(e.message, true); }
    };
    $('view').replaceChildren(
      el('h2', {}, 'Users'),
      el('p', {}, 'Disabling a user ends their sessions at once; a password reset does too. Every action is audited. (CLI: warden user disable | enable | reset-password.)'),
      el('div', { class: 'table-scroll' }, el('table', { id: 'users' },
        el('thead', {}, el('tr', {}, ['User', 'Role', 'State', 'Sessions', 'Actions'].map(x => el('th', { scope: 'col' }, x)))),
        el('tbody', {}, users.map(u => el('tr', { 'data-user': u.username },
          el('td', {}, u.username), el('td', {}, u.role), el('td', { class: 'user-state' }, u.disabled ? 'disabled' : 'active'), el('td', {}, u.sessions),
          el('td', {},
            u.disabled ? el('button', { type: 'button', class: 'secondary', id: 'enable-' + u.username, onclick: () => act(u, 'enable') }, 'Enable')
              : el('button', { type: 'button', class: 'danger', id: 'disable-' + u.username, disabled: u.username === state.me.username ? true : null, onclick: () => act(u, 'disable') }, 'Disable'), ' ',
            el('button', { type: 'button', class: 'secondary', id: 'reset-' + u.username, onclick: () => act(u, 'password') }, 'Reset password'))))))));
    document.title = 'Users – Warden review';
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
