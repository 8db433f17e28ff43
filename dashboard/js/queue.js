// The triage queue: PRs with their top suggestion, strongest first; the way into the PR view.
// With a search (number or title words, author, label, changed path, base branch, coding
// agents) it lists the PRs found instead, newest update first. Everything lives in the URL.

import { api, qs } from './api.js';
import {
  h, put, age, chip, stateChip, ghLink, scoreBar, empty, errorBox, loading, moreButton,
} from './dom.js';

const STATES = ['open', 'closed', 'merged', 'all'];
const REVIEW = [['', 'all PRs'], ['true', 'awaiting a verdict'], ['false', 'reviewed or no suggestion']];
const ORDERS = [['score', 'strongest suggestion'], ['updated', 'recently updated'], ['number', 'PR number']];

function row(ctx, it) {
  const s = it.topSuggestion;
  return h('li', { class: 'qitem', 'data-number': it.number },
    h('div', { class: 'member-main' },
      h('a', { href: ctx.href('pr', { repo: ctx.repo.repoId, n: it.number }), class: 'member-title' },
        h('span', { class: 'num' }, `#${it.number}`), ' ', it.title || '(no title)'),
      it.needsReview ? h('span', { class: 'pill tier-medium' }, 'needs review') : null),
    h('div', { class: 'member-meta' }, stateChip(it.state), h('span', {}, 'by ', h('strong', {}, it.author)),
      it.agent ? h('span', { class: 'pill agent' }, 'coding agent') : null,
      it.baseRef && it.baseRef !== 'main' ? h('span', { class: 'pill' }, `→ ${it.baseRef}`) : null,
      (it.labels || []).map((l) => h('span', { class: 'pill label' }, l)),
      h('span', {}, 'updated ', age(it.updatedAt)), ghLink(it.url, 'GitHub', `#${it.number} on GitHub`)),
    s ? h('div', { class: 'suggestion' },
      h('a', { href: ctx.href('pair', { repo: ctx.repo.repoId, a: it.number, b: s.candidatePrNumber }) },
        `looks like #${s.candidatePrNumber}`),
      chip(s.category),
      scoreBar('score', s.finalScore))
      : h('p', { class: 'reason' }, 'No suggestion: nothing else looks like it.'));
}

const SEARCH_FIELDS = [
  ['q', 'Search', 'PR number or title words', 'search'],
  ['author', 'Author', 'login', 'text'],
  ['label', 'Label', 'bug', 'text'],
  ['path', 'Changed path', 'src/server/', 'text'],
  ['base', 'Base branch', 'main', 'text'],
];

export async function queueView(ctx) {
  const p = ctx.params;
  const state = STATES.includes(p.get('state')) ? p.get('state') : 'open';
  const review = ['true', 'false'].includes(p.get('review')) ? p.get('review') : '';
  const search = Object.fromEntries(SEARCH_FIELDS.map(([k]) => [k, (p.get(k) || '').trim()]));
  const agent = p.get('agent') === '1';
  const searching = agent || SEARCH_FIELDS.some(([k]) => search[k]);
  // A search lists PRs by update or number; the queue also by its strongest suggestion.
  const orders = searching ? ORDERS.filter(([k]) => k !== 'score') : ORDERS;
  const order = orders.some(([k]) => k === p.get('order')) ? p.get('order') : orders[0][0];
  const apply = () => {
    const f = document.getElementById('qfilters');
    const s = document.getElementById('qsearch');
    ctx.go('queue', {
      repo: ctx.repo.repoId,
      state: f.elements.state.value === 'open' ? '' : f.elements.state.value,
      review: f.elements.review.value,
      order: f.elements.order.value === orders[0][0] ? '' : f.elements.order.value,
      ...Object.fromEntries(SEARCH_FIELDS.map(([k]) => [k, s.elements[k].value.trim()])),
      agent: s.elements.agent.checked ? '1' : '',
    });
  };
  const select = (id, name, label, options, value) => h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('select', { id, name, onchange: apply }, options.map(([k, text]) => h('option', { value: k, selected: k === value }, text))));
  const list = h('ol', { class: 'queue', 'aria-busy': 'true' });
  const box = h('div', {}, loading(searching ? 'Searching…' : 'Loading the triage queue…'));
  const searchForm = h('form', {
    id: 'qsearch', class: 'filters search', role: 'search', 'aria-label': 'Search pull requests',
    onsubmit: (e) => { e.preventDefault(); apply(); },
  },
  SEARCH_FIELDS.map(([k, label, placeholder, type]) => h('div', { class: `field f-${k}` },
    h('label', { for: `s-${k}` }, label),
    h('input', { id: `s-${k}`, name: k, type, value: search[k], placeholder, maxlength: k === 'path' ? 300 : 200, autocomplete: 'off', spellcheck: 'false' }))),
  h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'agent', checked: agent }), 'by coding agents'),
  h('button', { type: 'submit', class: 'btn' }, 'Search'),
  searching ? h('a', { class: 'btn ghost', href: ctx.href('queue', { repo: ctx.repo.repoId }) }, 'Clear') : null);
  put(ctx.main,
    h('div', { class: 'view-head' }, h('h1', {}, 'Pull requests'),
      h('p', { class: 'summary muted' }, searching
        ? 'PRs matching the search, most recently updated first.'
        : 'Each PR with the strongest thing it looks like.')),
    h('div', { class: 'filters-wrap' }, searchForm),
    h('div', { class: 'filters-wrap' },
      h('form', { id: 'qfilters', class: 'filters', 'aria-label': 'Filters', onsubmit: (e) => { e.preventDefault(); apply(); } },
        select('q-state', 'state', 'State', STATES.map((s) => [s, s]), state),
        searching ? h('input', { type: 'hidden', name: 'review', value: review })
          : select('q-review', 'review', 'Show', REVIEW, review),
        select('q-order', 'order', 'Order', orders, order))),
    box);
  const path = searching
    ? (cursor) => `/repos/${ctx.repo.repoId}/prs${qs({
      limit: 50, state, orderBy: order, ...search, agent: agent ? 'true' : '', cursor,
    })}`
    : (cursor) => `/repos/${ctx.repo.repoId}/triage-queue${qs({ limit: 50, state, needsReview: review, orderBy: order, cursor })}`;
  let page;
  try {
    page = await api(path(), { signal: ctx.signal });
  } catch (err) {
    if (err.name === 'AbortError' || err.status === 401) throw err;
    put(box, errorBox(err, ctx.refresh));
    return;
  }
  if (!page.items.length) {
    put(box, empty(searching ? 'No pull request matches this search.' : 'No pull requests here.',
      h('p', {}, searching ? 'Loosen the search, or look at another state.' : 'Try another state, or check the ',
        searching ? null : h('a', { href: ctx.href('scans', { repo: ctx.repo.repoId }) }, 'scans'), searching ? null : '.')));
    return;
  }
  put(list, page.items.map((it) => row(ctx, it)));
  list.setAttribute('aria-busy', 'false');
  const more = moreButton(page.nextCursor, (cursor) => api(path(cursor), { signal: ctx.signal }), (p2) => {
    list.append(...p2.items.map((it) => row(ctx, it)));
    return p2.nextCursor;
  });
  put(box, list, more);
}
