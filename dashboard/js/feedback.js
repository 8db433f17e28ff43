// Feedback buttons: POST a verdict, say plainly what was stored, then let the view reload so
// the result (a new base, a pair gone from its set) is visible.

import { api } from './api.js';
import { h, put, verdictText } from './dom.js';

/**
 * Buttons for a verdict on a pair ({target:'pair', a, b}) or a set ({target:'set', setId,
 * members}). `choices` is a list of [label, verdict, baseNumber?]. `onSaved(row)` runs after the
 * API stored it.
 */
export function feedbackButtons(repoId, target, choices, { latest, onSaved, label } = {}) {
  const status = h('p', { class: 'fb-status', role: 'status', 'aria-live': 'polite' });
  if (latest) showLatest(status, latest);
  let group;
  async function send(verdict, baseNumber) {
    const btns = [...group.querySelectorAll('button'), ...(extra.filter((b) => b.isConnected))];
    btns.forEach((b) => { b.disabled = true; });
    status.className = 'fb-status';
    put(status, 'Saving…');
    try {
      const body = { ...target, verdict };
      if (baseNumber) body.baseNumber = baseNumber;
      const actor = getActor();
      if (actor) body.actor = actor;
      const row = await api(`/repos/${repoId}/feedback`, { method: 'POST', body });
      status.className = 'fb-status ok';
      put(status, `Saved: ${verdictText(row)}.`);
      if (onSaved) await onSaved(row);
    } catch (err) {
      if (err.name === 'AbortError') return;
      status.className = 'fb-status bad';
      put(status, `Not saved: ${err.message}`);
    } finally {
      btns.forEach((b) => { b.disabled = false; });
    }
  }
  const extra = [];
  group = h('div', { class: 'fb-buttons', role: 'group', 'aria-label': label || 'Your verdict' },
    choices.map(([text, verdict, baseNumber]) => h('button', {
      type: 'button',
      class: `btn small fb-${verdict.replace('_', '-')}`,
      'data-verdict': verdict,
      'data-base': baseNumber || null,
      onclick: () => send(verdict, baseNumber),
    }, text)));
  const nameId = `actor-${++uid}`;
  const name = h('input', {
    id: nameId, class: 'actor', type: 'text', maxlength: 100, autocomplete: 'name',
    placeholder: 'anonymous', value: getActor(),
    onchange: (e) => setActor(e.target.value.trim()),
  });
  const el = h('div', { class: 'feedback' },
    group,
    h('p', { class: 'actor-line' }, h('label', { for: nameId }, 'Your name (kept in this browser)'), name),
    status);
  /** A button elsewhere (e.g. "Base is this one" on a member) that reports here. */
  el.button = (text, verdict, baseNumber, cls) => {
    const b = h('button', {
      type: 'button', class: cls || 'btn small', 'data-verdict': verdict, 'data-base': baseNumber || null,
      onclick: () => send(verdict, baseNumber),
    }, text);
    extra.push(b);
    return b;
  };
  return el;
}

const ACTOR_KEY = 'clawtriage.actor';
let uid = 0;

export function getActor() {
  try { return localStorage.getItem(ACTOR_KEY) || ''; } catch { return ''; }
}

function setActor(v) {
  try {
    if (v) localStorage.setItem(ACTOR_KEY, v); else localStorage.removeItem(ACTOR_KEY);
  } catch { /* storage disabled */ }
  for (const i of document.querySelectorAll('input.actor')) i.value = v;
}

export function showLatest(el, f) {
  el.className = 'fb-status done';
  put(el, 'Latest verdict: ', h('strong', {}, verdictText(f)),
    f.actor ? ` by ${f.actor}` : '', f.createdAt ? ` · ${new Date(f.createdAt).toLocaleString()}` : '');
}

/** The newest feedback rows of a repo, indexed by set id and by pair. */
export async function latestFeedback(repoId, signal) {
  const out = { sets: new Map(), pairs: new Map() };
  try {
    const { feedback } = await api(`/repos/${repoId}/feedback?limit=1000`, { signal });
    for (const f of feedback) { // newest first: keep the first seen
      if (f.target === 'set' && f.setId && !out.sets.has(f.setId)) out.sets.set(f.setId, f);
      if (f.target === 'pair' && f.aNumber && f.bNumber) {
        const k = pairKey(f.aNumber, f.bNumber);
        if (!out.pairs.has(k)) out.pairs.set(k, f);
      }
    }
  } catch (e) {
    if (e.name === 'AbortError' || e.status === 401) throw e;
    // Feedback history is a nicety; the view works without it.
  }
  return out;
}

export const pairKey = (a, b) => `${Math.min(a, b)}-${Math.max(a, b)}`;
