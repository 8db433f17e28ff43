// Duplicate sets, in the API's order, with filters kept in the URL (score, categories, state,
// and "touching path" / "with PR or words"). A linked set (`open=`) is shown even when it is not
// on the first page: set ids are stable, so links keep working. Each set has its act panel.

import { api, qs } from './api.js';
import {
  h, put, age, chip, stateChip, tierChip, ghLink, score2, scoreBar, loading, empty, errorBox,
  CATEGORIES, categoryName, verdictText,
} from './dom.js';
import { feedbackButtons, latestFeedback, pairKey } from './feedback.js';
import { actPanel } from './actions.js';

const DEFAULT_CATS = ['SAME_CHANGE', 'SAME_FEATURE', 'COMPETING_IMPLEMENTATION'];
const STATES = ['open', 'closed', 'merged', 'all'];
const ROLE_NAMES = { base: 'base', keep: 'keep', 'base+keep': 'base · keep' };

function filtersFrom(params) {
  const min = params.get('minScore');
  const raw = params.get('cat');
  const cats = raw === 'none' ? [] : (raw || '').split(',').filter((c) => CATEGORIES.includes(c));
  const state = STATES.includes(params.get('state')) ? params.get('state') : 'open';
  return {
    minScore: min !== null && min !== '' && !Number.isNaN(Number(min)) ? Number(min) : null,
    cats: raw === 'none' ? [] : (cats.length ? cats : DEFAULT_CATS),
    state,
    path: (params.get('path') || '').trim(),
    q: (params.get('q') || '').trim(),
  };
}

function filterForm(ctx, f) {
  const params = () => {
    const form = document.getElementById('filters');
    const cats = [...form.querySelectorAll('input[name=cat]:checked')].map((i) => i.value);
    const min = form.elements.minScore.value;
    return {
      repo: ctx.repo.repoId,
      minScore: min,
      cat: !cats.length ? 'none' : (cats.join(',') !== DEFAULT_CATS.join(',') ? cats.join(',') : ''),
      state: form.elements.state.value === 'open' ? '' : form.elements.state.value,
      path: form.elements.path.value.trim(),
      q: form.elements.q.value.trim(),
    };
  };
  const apply = (e) => { if (e) e.preventDefault(); ctx.go('sets', params()); };
  const minInput = h('input', {
    id: 'f-min', name: 'minScore', type: 'number', min: 0, max: 1, step: 0.01,
    inputmode: 'decimal', placeholder: 'default', value: f.minScore ?? '',
  });
  const prInput = h('input', { id: 'f-pr', name: 'pr', type: 'number', min: 1, inputmode: 'numeric', placeholder: '1234' });
  return h('div', { class: 'filters-wrap' },
    h('form', { id: 'filters', class: 'filters', onsubmit: apply, 'aria-label': 'Filters' },
      h('div', { class: 'field' }, h('label', { for: 'f-min' }, 'Min. score'), minInput),
      h('div', { class: 'field' }, h('label', { for: 'f-state' }, 'State'),
        h('select', { id: 'f-state', name: 'state', onchange: apply },
          STATES.map((s) => h('option', { value: s, selected: s === f.state }, s)))),
      h('div', { class: 'field' }, h('label', { for: 'f-path' }, 'Touching path'),
        h('input', { id: 'f-path', name: 'path', type: 'text', value: f.path, placeholder: 'src/server/', maxlength: 300, autocomplete: 'off', spellcheck: 'false' })),
      h('div', { class: 'field' }, h('label', { for: 'f-q' }, 'With PR or words'),
        h('input', { id: 'f-q', name: 'q', type: 'search', value: f.q, placeholder: '#123 or timeout', maxlength: 200, autocomplete: 'off' })),
      h('fieldset', { class: 'field cats' }, h('legend', {}, 'Categories'),
        CATEGORIES.map((c) => h('label', { class: 'check' },
          h('input', { type: 'checkbox', name: 'cat', value: c, checked: f.cats.includes(c), onchange: apply }),
          categoryName(c)))),
      h('button', { type: 'submit', class: 'btn' }, 'Apply')),
    h('form', {
      class: 'jump', 'aria-label': 'Open a PR',
      onsubmit: (e) => {
        e.preventDefault();
        if (prInput.value) ctx.go('pr', { repo: ctx.repo.repoId, n: prInput.value });
      },
    }, h('div', { class: 'field' }, h('label', { for: 'f-pr' }, 'Open PR #'), prInput), h('button', { type: 'submit', class: 'btn' }, 'Open')));
}

function memberRow(ctx, m, baseButton) {
  const role = m.role !== 'member' ? h('span', { class: `pill role-${m.role.replace('+', '-')}` }, ROLE_NAMES[m.role]) : null;
  return h('li', { class: 'member', 'data-number': m.number },
    h('div', { class: 'member-main' },
      h('a', { href: ctx.href('pr', { repo: ctx.repo.repoId, n: m.number }), class: 'member-title' },
        h('span', { class: 'num' }, `#${m.number}`), ' ', m.title || '(no title)'),
      role),
    h('div', { class: 'member-meta' },
      stateChip(m.state),
      h('span', {}, 'by ', h('strong', {}, m.author)),
      age(m.createdAt),
      ghLink(m.url, 'GitHub', `#${m.number} on GitHub`),
      m.role.startsWith('base') ? null : baseButton(m.number)));
}

function edgeRow(ctx, e, fb) {
  const reasons = (e.evidence && e.evidence.reasons) || [];
  const verdict = fb.pairs.get(pairKey(e.a, e.b));
  return h('li', { class: 'edge' },
    h('div', { class: 'edge-head' },
      h('a', { href: ctx.href('pair', { repo: ctx.repo.repoId, a: e.a, b: e.b }), class: 'edge-link' },
        `#${e.a} ↔ #${e.b}`, h('span', { class: 'sr' }, ': see the evidence')),
      chip(e.category),
      verdict ? h('span', { class: 'pill verdict' }, `verdict: ${verdictText(verdict)}`) : null),
    scoreBar('score', e.finalScore),
    reasons.length ? h('p', { class: 'reason' }, reasons[0]) : null);
}

function setCard(ctx, set, fb, state, settings, linked) {
  const base = set.members.find((m) => m.number === set.base.number);
  const keep = set.members.find((m) => m.number === set.keep.number);
  const latest = fb.sets.get(set.setId);
  const reload = async (row) => {
    await state.reload(set.setId);
    if (row && row.verdict === 'not_duplicate') {
      const el = document.getElementById(set.setId);
      const st = el && el.querySelector('.fb-status');
      if (st) {
        st.append(h('br'), 'Recorded: every pair in this set is marked not duplicate, so these PRs are no longer grouped.');
      }
    }
  };
  const target = { target: 'set', setId: set.setId, members: set.members.map((m) => m.number) };
  const fbBox = feedbackButtons(ctx.repo.repoId, target, [
    ['Duplicate', 'duplicate'], ['Not duplicate', 'not_duplicate'], ['Competing', 'competing'],
  ], { latest, onSaved: reload, label: 'Verdict on this set' });
  const baseButton = (n) => fbBox.button('Base is this one', 'base_is', n, 'btn small link fb-base-is');
  const details = h('details', { class: 'set card', id: set.setId, 'data-set-id': set.setId, open: state.open === set.setId },
    h('summary', {},
      h('div', { class: 'set-head' },
        h('span', { class: 'set-title' }, base ? `#${base.number} ${base.title}` : set.setId),
        h('span', { class: 'set-facts' },
          tierChip(set.tier),
          h('span', { class: 'pill' }, `${set.size} PRs`),
          h('span', { class: 'pill score', title: 'strongest link / weakest link' }, `${score2(set.maxScore)} / ${score2(set.minLinkScore)}`),
          set.categories.map(chip),
          latest ? h('span', { class: 'pill verdict' }, 'reviewed') : null,
          linked ? h('span', { class: 'pill linked' }, 'linked') : null))),
    h('div', { class: 'set-body' },
      h('dl', { class: 'picks' },
        h('div', {}, h('dt', {}, 'Base (the original)'),
          h('dd', {}, h('strong', {}, `#${set.base.number}`), ' — ', set.base.reason)),
        h('div', {}, h('dt', {}, 'Keep (the one to merge)'),
          h('dd', {}, h('strong', {}, `#${set.keep.number}`), ' — ', set.keep.reason))),
      h('h3', {}, 'Members'),
      h('ul', { class: 'members' }, set.members.map((m) => memberRow(ctx, m, baseButton))),
      h('h3', {}, 'Strongest links'),
      h('ul', { class: 'edges' }, set.edges.map((e) => edgeRow(ctx, e, fb))),
      fbBox,
      actPanel(ctx, set, settings)));
  details.addEventListener('toggle', () => {
    state.open = details.open ? set.setId : (state.open === set.setId ? null : state.open);
    const p = Object.fromEntries(ctx.params);
    if (state.open) p.open = state.open; else delete p.open;
    ctx.go('sets', p, { quiet: true });
  });
  if (keep && keep !== base) details.dataset.keep = keep.number;
  return details;
}

export async function setsView(ctx) {
  const f = filtersFrom(ctx.params);
  const repoId = ctx.repo.repoId;
  const list = h('div', { class: 'sets', 'aria-live': 'polite', 'aria-busy': 'true' }, loading('Loading duplicate sets…'));
  const summary = h('p', { class: 'summary muted' });
  put(ctx.main,
    h('div', { class: 'view-head' }, h('h1', {}, 'Duplicate sets'), summary),
    filterForm(ctx, f),
    list);

  const state = { open: ctx.params.get('open'), cursor: null, reload: null };
  const query = {
    limit: 20,
    minScore: f.minScore ?? '',
    includeCategories: f.cats.join(','),
    state: f.state,
    path: f.path,
    q: f.q,
  };

  async function load(keepOpen) {
    if (keepOpen !== undefined) state.open = keepOpen;
    if (!f.cats.length) {
      put(summary, 'no category chosen');
      put(list, empty('No category is ticked.', h('p', {}, 'Tick at least one category above to see duplicate sets.')));
      list.setAttribute('aria-busy', 'false');
      return;
    }
    list.setAttribute('aria-busy', 'true');
    let page, fb, settings;
    try {
      [page, fb, settings] = await Promise.all([
        api(`/repos/${repoId}/duplicate-sets${qs(query)}`, { signal: ctx.signal }),
        latestFeedback(repoId, ctx.signal),
        api(`/repos/${repoId}/settings`, { signal: ctx.signal }).catch((e) => {
          if (e.name === 'AbortError' || e.status === 401) throw e;
          return null;
        }),
      ]);
    } catch (err) {
      if (err.name === 'AbortError' || err.status === 401) throw err;
      put(list, errorBox(err, () => load()));
      list.setAttribute('aria-busy', 'false');
      return;
    }
    list.setAttribute('aria-busy', 'false');
    put(summary, page.total === 1 ? '1 set' : `${page.total} sets`,
      f.minScore !== null ? ` · score ≥ ${f.minScore}` : '', ` · ${f.state}`,
      f.path ? ` · touching ${f.path}` : '', f.q ? ` · with ${f.q}` : '');
    // A linked set that is not on this page is fetched by its id and shown first.
    let linked = null;
    if (state.open && !page.sets.some((s) => s.setId === state.open)) {
      try {
        linked = await api(`/repos/${repoId}/duplicate-sets/${encodeURIComponent(state.open)}`, { signal: ctx.signal });
      } catch (err) {
        if (err.name === 'AbortError' || err.status === 401) throw err;
        if (err.status === 404) {
          list.before(h('p', { class: 'notice warn gone' }, `The linked set ${state.open} no longer exists: `, err.message));
        }
      }
    }
    if (!page.sets.length && !linked) {
      put(list, empty('No duplicate sets match these filters.',
        h('p', {}, 'Lower the minimum score, include more categories or states, or check the ',
          h('a', { href: ctx.href('scans', { repo: repoId }) }, 'scans'), ' for one still running.')));
      return;
    }
    const cards = page.sets.map((s) => setCard(ctx, s, fb, state, settings));
    if (linked) cards.unshift(setCard(ctx, linked, fb, state, settings, true));
    put(list, cards);
    let next = page.nextCursor;
    const more = h('button', {
      type: 'button', class: 'btn more',
      onclick: async () => {
        more.disabled = true;
        more.textContent = 'Loading…';
        try {
          const p = await api(`/repos/${repoId}/duplicate-sets${qs({ ...query, cursor: next })}`, { signal: ctx.signal });
          more.before(...p.sets.filter((s) => !linked || s.setId !== linked.setId).map((s) => setCard(ctx, s, fb, state, settings)));
          next = p.nextCursor;
          if (!next) more.remove();
        } catch (err) {
          more.after(errorBox(err));
        } finally {
          more.disabled = false;
          more.textContent = 'Show more sets';
        }
      },
    }, 'Show more sets');
    if (next) list.append(more);
    const opened = state.open && document.getElementById(state.open);
    if (opened && keepOpen === undefined) opened.scrollIntoView({ block: 'start' });
  }
  state.reload = async (setId) => {
    await load(setId);
    const el = document.getElementById(setId);
    if (el) el.querySelector('summary').focus({ preventScroll: true });
  };
  await load();
}

