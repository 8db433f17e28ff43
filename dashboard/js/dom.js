// Small DOM helpers. Everything is built with createElement and textContent, never innerHTML,
// so PR titles, paths and error messages from the API cannot inject markup.

/** h('a', {href, class, onclick}, children...) → element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces an element's children. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const UNITS = [
  ['y', 365 * 86400], ['mo', 30 * 86400], ['d', 86400], ['h', 3600], ['min', 60],
];

/** "3 d ago" with the exact time as a tooltip. */
export function age(iso) {
  if (!iso) return h('span', { class: 'muted', text: '—' });
  const t = new Date(iso);
  const s = Math.max(0, (Date.now() - t.getTime()) / 1000);
  let text = 'just now';
  for (const [u, secs] of UNITS) {
    if (s >= secs) { text = `${Math.floor(s / secs)} ${u} ago`; break; }
  }
  return h('time', { datetime: t.toISOString(), title: t.toLocaleString() }, text);
}

export function dateTime(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleString();
}

export const score2 = (x) => (typeof x === 'number' ? x.toFixed(2) : '—');

/** A labelled horizontal bar for a score in [0, 1]; null means "no evidence". */
export function scoreBar(label, value, hint) {
  const none = value === null || value === undefined;
  const fill = h('span', { class: 'fill' });
  if (!none) fill.style.width = `${Math.round(Math.max(0, Math.min(1, value)) * 100)}%`;
  return h('div', { class: `bar${none ? ' none' : ''}`, title: hint || null },
    h('span', { class: 'bar-label' }, label),
    h('span', {
      class: 'track', role: 'meter', 'aria-label': label,
      'aria-valuemin': 0, 'aria-valuemax': 1, 'aria-valuenow': none ? null : value,
      'aria-valuetext': none ? 'no evidence' : score2(value),
    }, fill),
    h('span', { class: 'bar-value' }, none ? 'no evidence' : score2(value)));
}

const CATEGORY_NAMES = {
  SAME_CHANGE: 'same change',
  SAME_FEATURE: 'same feature',
  COMPETING_IMPLEMENTATION: 'competing',
  RELATED: 'related',
  NOT_RELATED: 'not related',
};
/** The pill class of an action's outcome. */
export const OUTCOME_CLASS = { done: 'verdict', skipped: 'tier-review', refused: 'tier-medium', failed: 'tier-high' };

export const CATEGORIES = ['SAME_CHANGE', 'SAME_FEATURE', 'COMPETING_IMPLEMENTATION', 'RELATED'];
export const categoryName = (c) => CATEGORY_NAMES[c] || c.toLowerCase();

export function chip(category) {
  return h('span', { class: `chip cat-${category.toLowerCase().replace(/_/g, '-')}` }, categoryName(category));
}

export function stateChip(state, draft) {
  return h('span', { class: `pill st-${state}` }, draft ? `${state} · draft` : state);
}

export function tierChip(tier) {
  const label = { high: 'high confidence', medium: 'medium confidence', review: 'needs review' }[tier] || tier;
  return h('span', { class: `pill tier-${tier}` }, label);
}

/** A link to GitHub in a new tab. */
export function ghLink(url, text, label) {
  return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'gh', 'aria-label': label || null },
    text, h('span', { class: 'ext', 'aria-hidden': 'true' }, ' ↗'));
}

export function loading(text) {
  return h('p', { class: 'state loading', role: 'status' }, text || 'Loading…');
}

export function empty(title, ...more) {
  return h('div', { class: 'state empty' }, h('p', { class: 'state-title' }, title), ...more);
}

export function errorBox(err, retry) {
  const msg = err && err.message ? err.message : String(err);
  return h('div', { class: 'state error', role: 'alert' },
    h('p', { class: 'state-title' }, err && err.status ? `The API answered ${err.status}` : 'Something went wrong'),
    h('p', {}, msg),
    retry ? h('button', { type: 'button', class: 'btn', onclick: retry }, 'Try again') : null);
}

export const VERDICT_NAMES = {
  duplicate: 'duplicate',
  not_duplicate: 'not duplicate',
  competing: 'competing',
  related: 'related',
  base_is: 'base is',
};

export function verdictText(f) {
  if (!f) return '';
  if (f.verdict === 'base_is') return `base is #${f.baseNumber}`;
  return VERDICT_NAMES[f.verdict] || f.verdict;
}

/**
 * A "Show more" button for keyset pages: `fetchPage(cursor)` resolves to the next page,
 * `append(page)` shows it and returns its `nextCursor`; the button goes when there is no more.
 */
export function moreButton(first, fetchPage, append, label = 'Show more') {
  let next = first;
  const more = h('button', {
    type: 'button', class: 'btn more',
    onclick: async () => {
      more.disabled = true;
      try {
        next = append(await fetchPage(next));
        if (!next) more.remove();
      } catch (err) {
        if (err.name !== 'AbortError') more.after(errorBox(err));
      } finally {
        more.disabled = false;
      }
    },
  }, label);
  return next ? more : null;
}
