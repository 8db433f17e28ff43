// Recent scans with live progress: counts, API calls spent, rate-limit budget, errors in words.

import { api } from './api.js';
import { h, put, age, dateTime, empty, errorBox } from './dom.js';

const ACTIVE = new Set(['queued', 'running']);

function duration(s) {
  if (!s.startedAt) return null;
  const end = s.finishedAt ? new Date(s.finishedAt) : new Date();
  const secs = Math.max(0, Math.round((end - new Date(s.startedAt)) / 1000));
  return secs < 60 ? `${secs} s` : `${Math.floor(secs / 60)} min ${secs % 60} s`;
}

function scanCard(s) {
  const done = s.prsAnalyzed + s.prsUnchanged + s.prsFailed;
  const pct = s.prsListed ? Math.min(100, Math.round((done / s.prsListed) * 100)) : (s.state === 'done' ? 100 : 0);
  const fill = h('span', { class: 'fill' });
  fill.style.width = `${pct}%`;
  const notes = Array.isArray(s.notes) ? s.notes : [];
  const reset = s.rateLimitResetAt ? ` (resets ${new Date(s.rateLimitResetAt).toLocaleTimeString()})` : '';
  return h('article', { class: `card scan st-${s.state}`, 'data-job-id': s.jobId },
    h('div', { class: 'scan-head' },
      h('h2', {}, `${s.owner}/${s.repo}`),
      h('span', { class: `pill scan-${s.state}` }, s.state),
      h('span', { class: 'muted small' }, `snapshot ${s.snapshot} · ${s.trigger}${s.actor ? ` by ${s.actor}` : ''} · queued `, age(s.createdAt))),
    h('div', { class: 'progress' },
      h('span', {
        class: 'track', role: 'progressbar', 'aria-label': 'PRs processed',
        'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct,
      }, fill),
      h('span', { class: 'bar-value' }, `${done} / ${s.prsListed} PRs`)),
    h('dl', { class: 'facts' },
      fact('listed', s.prsListed), fact('analysed', s.prsAnalyzed), fact('unchanged', s.prsUnchanged),
      fact('failed', s.prsFailed, s.prsFailed ? 'bad' : ''), fact('waiting', s.prsPending),
      fact('diffs', `${s.sourceMirror} mirror · ${s.sourceRest} REST`),
      fact('API calls', s.apiCalls),
      fact('rate limit left', s.rateLimitRemaining === null || s.rateLimitRemaining === undefined
        ? 'unknown' : `${s.rateLimitRemaining}${reset}`, s.rateLimitRemaining !== null && s.rateLimitRemaining < 100 ? 'warn' : ''),
      fact('auth', s.auth || '—'),
      fact('took', duration(s) || '—'),
      fact('finished', s.finishedAt ? dateTime(s.finishedAt) : '—')),
    s.error ? h('p', { class: 'notice bad', role: 'alert' }, h('strong', {}, 'Scan failed: '), s.error) : null,
    notes.length ? h('ul', { class: 'notes' }, notes.map((n) => h('li', {}, n))) : null);
}

function fact(label, value, cls) {
  return h('div', { class: cls || null }, h('dt', {}, label), h('dd', {}, String(value)));
}

export async function scansView(ctx) {
  const list = h('div', { class: 'scans', 'aria-busy': 'true' });
  const live = h('p', { class: 'summary muted', role: 'status' });
  put(ctx.main, h('div', { class: 'view-head' }, h('h1', {}, 'Scans'), live), list);
  let timer = null;
  ctx.signal.addEventListener('abort', () => clearTimeout(timer));
  let failures = 0;
  async function tick() {
    let data;
    try {
      data = await api('/ops/scans?limit=20', { signal: ctx.signal });
      failures = 0;
    } catch (err) {
      if (err.name === 'AbortError' || err.status === 401) throw err;
      failures += 1;
      if (!list.firstChild || list.querySelector('.state')) put(list, errorBox(err, () => tick().catch(() => {})));
      put(live, `Could not refresh: ${err.message}`);
      schedule(Math.min(30000, 2000 * 2 ** failures));
      return;
    }
    list.setAttribute('aria-busy', 'false');
    const scans = data.scans || [];
    const active = scans.some((s) => ACTIVE.has(s.state));
    put(live, active ? 'Live: refreshing every 2 s while a scan runs.' : `Live · updated ${new Date().toLocaleTimeString()}.`);
    if (!scans.length) {
      put(list, empty('No scans yet.',
        h('p', {}, 'Start one with ', h('code', {}, 'clawtriage trigger --owner OWNER --repo REPO --wait'),
          ' or wait for the scheduled scan.')));
    } else {
      put(list, scans.map(scanCard));
    }
    schedule(active ? 2000 : 5000);
  }
  // While the tab is hidden nothing is fetched; the next tick after it shows again catches up.
  function schedule(ms) {
    if (ctx.signal.aborted) return;
    timer = setTimeout(() => {
      if (document.hidden) schedule(ms);
      else tick().catch(() => {});
    }, ms);
  }
  await tick();
}
