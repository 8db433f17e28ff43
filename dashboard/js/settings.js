// A repository's `.github/clawtriage.toml`: how it was read, its text with each problem on its
// line, and the settings in force (the appliance's defaults while the file is missing or bad).

import { api } from './api.js';
import { h, put, age, errorBox } from './dom.js';

const STATUS_TEXT = {
  valid: 'read and valid: its settings are in force',
  invalid: 'has problems: the appliance’s defaults are in force until it is fixed',
  unreadable: 'could not be read: the appliance’s defaults are in force',
  absent: 'is not in the repository: the appliance’s defaults are in force',
};

function fileText(text, errors) {
  const byLine = new Map();
  for (const e of errors) {
    if (!byLine.has(e.line)) byLine.set(e.line, []);
    byLine.get(e.line).push(e);
  }
  const lines = (text || '').split('\n');
  return h('ol', { class: 'file-lines', 'aria-label': 'The file, line by line' }, lines.map((l, i) => {
    const probs = byLine.get(i + 1) || [];
    return h('li', { class: probs.length ? 'file-line bad' : 'file-line', 'data-line': i + 1 },
      h('code', {}, l || ' '),
      probs.map((p) => h('span', { class: 'file-problem', role: 'note' }, `line ${p.line}, column ${p.column}: ${p.message}`)));
  }));
}

function yesNo(v) { return v ? 'on' : 'off'; }

function effectiveBox(s) {
  const e = s.effective;
  const triageKeys = Object.keys(e.triage || {});
  return h('dl', { class: 'facts settings-facts' },
    h('div', {}, h('dt', {}, 'review threshold'), h('dd', {}, String(s.reviewThreshold))),
    h('div', {}, h('dt', {}, 'engine config version'), h('dd', {}, String(s.configVersion))),
    h('div', {}, h('dt', {}, 'engine overrides'), h('dd', {}, triageKeys.length ? triageKeys.join(', ') : 'none')),
    h('div', {}, h('dt', {}, 'close duplicates'), h('dd', {}, yesNo(e.actions.closeDuplicates))),
    h('div', {}, h('dt', {}, 'labels'), h('dd', {}, yesNo(e.actions.labels))),
    h('div', {}, h('dt', {}, 'digest'), h('dd', {}, `${yesNo(e.digest.enabled)} (${s.writes.digestSchedule || 'no DIGEST_SCHEDULE'})`)),
    h('div', {}, h('dt', {}, 'webhook'), h('dd', {}, s.writes.webhook ? `${yesNo(e.notify.webhook)}, from ${e.notify.minTier} sets` : 'no NOTIFY_WEBHOOK_URL')),
    h('div', {}, h('dt', {}, 'coding agents'), h('dd', {}, `${e.agents.logins.length} logins, ${e.agents.branchPrefixes.length} branch prefixes`)),
    h('div', { class: s.writes.possible ? '' : 'warn' }, h('dt', {}, 'writes to GitHub'), h('dd', {}, s.writes.possible ? 'possible' : s.writes.reason)));
}

export async function settingsView(ctx) {
  const repoId = ctx.repo.repoId;
  const body = h('div', {});
  const status = h('p', { class: 'fb-status', role: 'status' });
  const reload = h('button', {
    type: 'button', class: 'btn reload',
    onclick: async () => {
      reload.disabled = true;
      put(status, 'Reading the file from GitHub…');
      try {
        show(await api(`/repos/${repoId}/settings/reload`, { method: 'POST', body: {} }));
        status.className = 'fb-status ok';
        put(status, 'Read again.');
      } catch (err) {
        status.className = 'fb-status bad';
        put(status, `Not read: ${err.message}`);
      } finally {
        reload.disabled = false;
      }
    },
  }, 'Read it again from GitHub');
  put(ctx.main,
    h('div', { class: 'view-head' }, h('h1', {}, 'Settings'),
      h('p', { class: 'summary muted' }, 'From ', h('code', {}, '.github/clawtriage.toml'), ' on the repository’s default branch.')),
    body, h('div', { class: 'fb-buttons' }, reload), status);

  function show(s) {
    const f = s.file;
    const errors = (f && f.errors) || [];
    put(body,
      h('section', { class: 'card' },
        h('h2', {}, 'The file'),
        h('p', { class: `settings-status st-${f ? f.status : 'never'}` }, h('code', {}, s.path), ' ',
          f ? STATUS_TEXT[f.status] || f.status : 'has not been read yet: the appliance’s defaults are in force',
          f ? h('span', { class: 'muted small' }, ' · read ', age(f.fetchedAt)) : null),
        errors.length ? h('ul', { class: 'notice bad problems' }, errors.map((e) => h('li', {}, `line ${e.line}, column ${e.column}: ${e.message}`))) : null,
        f && f.text ? fileText(f.text, errors) : null),
      h('section', { class: 'card' }, h('h2', {}, 'In force'), effectiveBox(s)));
  }

  try {
    show(await api(`/repos/${repoId}/settings`, { signal: ctx.signal }));
  } catch (err) {
    if (err.name === 'AbortError' || err.status === 401) throw err;
    put(body, errorBox(err, ctx.refresh));
  }
}
