// Everything ClawTriage wrote to GitHub (or refused to) for a repository, newest first: who
// asked, when, what, and GitHub's answer.

import { api, qs } from './api.js';
import { h, put, age, empty, errorBox, loading, moreButton, OUTCOME_CLASS } from './dom.js';

const KIND_TEXT = {
  comment: 'comment', close: 'close', label_add: 'label added', label_remove: 'label removed',
  feedback: 'verdict', digest_create: 'digest opened', digest_update: 'digest edited', webhook: 'webhook',
};

function row(ctx, a) {
  const url = a.githubAnswer && a.githubAnswer.url;
  return h('li', { class: 'qitem action', 'data-kind': a.kind, 'data-outcome': a.outcome },
    h('div', { class: 'member-main' },
      h('span', { class: 'member-title' }, a.detail),
      h('span', { class: `pill ${OUTCOME_CLASS[a.outcome] || ''}` }, a.outcome)),
    h('div', { class: 'member-meta' },
      h('span', { class: 'pill' }, KIND_TEXT[a.kind] || a.kind),
      a.number ? h('a', { href: ctx.href('pr', { repo: ctx.repo.repoId, n: a.number }) }, `#${a.number}`) : null,
      a.setId ? h('a', { href: ctx.href('sets', { repo: ctx.repo.repoId, open: a.setId }) }, a.setId) : null,
      h('span', {}, 'by ', h('strong', {}, a.actor)),
      age(a.createdAt),
      a.githubStatus ? h('span', {}, `GitHub ${a.githubStatus}`) : null,
      url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'gh' }, 'on GitHub', h('span', { 'aria-hidden': 'true' }, ' ↗')) : null));
}

export async function activityView(ctx) {
  const repoId = ctx.repo.repoId;
  const box = h('div', {}, loading('Loading the activity…'));
  put(ctx.main,
    h('div', { class: 'view-head' }, h('h1', {}, 'Activity'),
      h('p', { class: 'summary muted' }, 'Every write to GitHub made or refused on a maintainer’s behalf, the digest and the webhook.')),
    box);
  let page;
  try {
    page = await api(`/repos/${repoId}/actions${qs({ limit: 100 })}`, { signal: ctx.signal });
  } catch (err) {
    if (err.name === 'AbortError' || err.status === 401) throw err;
    put(box, errorBox(err, ctx.refresh));
    return;
  }
  if (!page.actions.length) {
    put(box, empty('Nothing was written to GitHub yet.', h('p', {}, 'Plan an action on a duplicate set; it shows up here once applied.')));
    return;
  }
  const list = h('ol', { class: 'queue activity' }, page.actions.map((a) => row(ctx, a)));
  const more = moreButton(page.nextCursor,
    (cursor) => api(`/repos/${repoId}/actions${qs({ limit: 100, cursor })}`, { signal: ctx.signal }),
    (p2) => {
      list.append(...p2.actions.map((a) => row(ctx, a)));
      return p2.nextCursor;
    });
  put(box, list, more);
}
