// A pair's evidence side by side: both PRs, what they share, and each signal as a bar.

import { api } from './api.js';
import {
  h, put, age, chip, stateChip, ghLink, score2, scoreBar, empty, verdictText,
} from './dom.js';
import { channelBar } from './pr.js';
import { feedbackButtons, latestFeedback, pairKey } from './feedback.js';

// Signals in the order a maintainer reads them, with what each means.
const SIGNALS = [
  ['prodExact', 'identical production change', 'the canonical production diffs are identical (rarity-weighted)'],
  ['prodBlocks', 'shared production blocks', 'rarity-weighted share of identical production change blocks'],
  ['prodText', 'similar production text', 'MinHash similarity of added and removed production lines'],
  ['revertCross', 'revert of the other', 'one side adds what the other removes'],
  ['paths', 'same production files', 'rarity-weighted overlap of production paths'],
  ['symbols', 'same symbols', 'rarity-weighted overlap of symbols and imports'],
  ['testBlocks', 'shared test blocks', 'identical test change blocks'],
  ['testNames', 'same test names', 'test names both add'],
  ['docs', 'similar docs', 'similarity of documentation changes'],
  ['refs', 'shared references', 'closing issues or mentions both carry'],
];
const DERIVED = [
  ['prod', 'production (used)'], ['area', 'area (paths + symbols)'], ['tests', 'tests (used)'],
  ['raw', 'raw score'], ['finalScore', 'final score'],
];

async function findEdge(repoId, a, b, signal) {
  const ca = await api(`/repos/${repoId}/prs/${a}/candidates?limit=50`, { signal });
  let hit = ca.candidates.find((c) => c.candidatePrNumber === b);
  if (hit) return { edge: hit, from: a };
  const cb = await api(`/repos/${repoId}/prs/${b}/candidates?limit=50`, { signal });
  hit = cb.candidates.find((c) => c.candidatePrNumber === a);
  return hit ? { edge: hit, from: b } : null;
}

function list(items, cls, mono) {
  if (!items || !items.length) return h('p', { class: 'muted' }, 'none');
  return h('ul', { class: `ev-list ${cls || ''}` }, items.map((x) => h('li', {}, mono ? h('code', {}, x) : x)));
}

function prSide(ctx, pr, lines, sharedPaths) {
  const shared = new Set(sharedPaths || []);
  const prodFiles = (pr.files || []).filter((f) => f.channel === 'production');
  const otherFiles = (pr.files || []).filter((f) => f.channel !== 'production');
  return h('section', { class: 'side card', 'aria-label': `PR #${pr.number}` },
    h('h2', {}, h('a', { href: ctx.href('pr', { repo: ctx.repo.repoId, n: pr.number }) },
      h('span', { class: 'num' }, `#${pr.number}`), ' ', pr.title || '(no title)')),
    h('p', { class: 'member-meta' }, stateChip(pr.state, pr.draft), h('span', {}, 'by ', h('strong', {}, pr.author)),
      age(pr.createdAt), ghLink(pr.url, 'GitHub', `#${pr.number} on GitHub`)),
    channelBar(pr.channelSizes),
    lines ? h('p', { class: 'muted small' }, `${lines[0]} production and ${lines[1]} test lines changed`) : null,
    h('details', { class: 'files', open: prodFiles.length <= 12 },
      h('summary', {}, `Production files (${prodFiles.length})`),
      prodFiles.length ? h('ul', { class: 'ev-list files-list' }, prodFiles.map((f) => h('li', { class: shared.has(f.path) ? 'shared' : '' },
        h('code', {}, f.path), shared.has(f.path) ? h('span', { class: 'tag' }, 'shared') : null,
        h('span', { class: 'muted small' }, ` +${f.additions} −${f.deletions}`)))) : h('p', { class: 'muted' }, 'none')),
    otherFiles.length ? h('details', { class: 'files' },
      h('summary', {}, `Other files (${otherFiles.length})`),
      h('ul', { class: 'ev-list files-list' }, otherFiles.map((f) => h('li', {},
        h('code', {}, f.path), h('span', { class: 'muted small' }, ` ${f.channel} +${f.additions} −${f.deletions}`))))) : null);
}

export async function pairView(ctx) {
  const repoId = ctx.repo.repoId;
  const a = Number(ctx.params.get('a'));
  const b = Number(ctx.params.get('b'));
  if (!a || !b || a === b) {
    put(ctx.main, h('h1', {}, 'Pair'), empty('This link does not name two PRs.', h('a', { href: ctx.href('sets', { repo: repoId }) }, 'Back to the duplicate sets')));
    return;
  }
  const [pa, pb, found, fb] = await Promise.all([
    api(`/repos/${repoId}/prs/${a}`, { signal: ctx.signal }),
    api(`/repos/${repoId}/prs/${b}`, { signal: ctx.signal }),
    findEdge(repoId, a, b, ctx.signal),
    latestFeedback(repoId, ctx.signal),
  ]);
  const back = h('p', { class: 'crumbs' }, h('a', { href: ctx.href('sets', { repo: repoId }) }, '← Duplicate sets'));
  if (!found) {
    put(ctx.main, back, h('h1', {}, `#${a} and #${b}`),
      h('div', { class: 'pair-sides' }, prSide(ctx, pa), prSide(ctx, pb)),
      empty('The engine has no link between these two PRs at their current heads.',
        h('p', {}, 'They may have been re-analysed since, or share nothing worth scoring.')));
    return;
  }
  const { edge } = found;
  // The evidence is stored from `found.from`'s side: lines are [from, other].
  const ev = edge.evidence || {};
  const sc = edge.scores || {};
  const linesA = found.from === a ? ev.prodLines && [ev.prodLines[0], ev.testLines[0]] : ev.prodLines && [ev.prodLines[1], ev.testLines[1]];
  const linesB = found.from === a ? ev.prodLines && [ev.prodLines[1], ev.testLines[1]] : ev.prodLines && [ev.prodLines[0], ev.testLines[0]];
  const latest = fb.pairs.get(pairKey(a, b));
  const flags = [
    ev.sameAuthor && 'same author (often a resubmission)',
    ev.directMention && 'one PR names the other',
    ev.revertLike && 'one looks like a revert of the other',
    ev.bot && 'a bot wrote one of them',
  ].filter(Boolean);
  const hunks = [
    `${ev.sharedHunks || 0} identical production block${ev.sharedHunks === 1 ? '' : 's'} (${ev.sharedHunkLines || 0} changed lines)`,
    `${ev.sharedTestHunks || 0} identical test block${ev.sharedTestHunks === 1 ? '' : 's'}`,
  ];
  const fbBox = feedbackButtons(repoId, { target: 'pair', a, b }, [
    ['Duplicate', 'duplicate'], ['Not duplicate', 'not_duplicate'], ['Competing', 'competing'],
    [`Base is #${a}`, 'base_is', a], [`Base is #${b}`, 'base_is', b],
  ], {
    latest: latest || (edge.feedback ? { verdict: edge.feedback, actor: 'a maintainer', createdAt: null } : null),
    label: 'Verdict on this pair',
    onSaved: (row) => {
      if (row.verdict === 'not_duplicate') {
        fbBox.append(h('p', { class: 'muted small' }, 'This pair will no longer hold a duplicate set together.'));
      }
    },
  });
  put(ctx.main,
    back,
    h('div', { class: 'view-head' },
      h('h1', {}, `#${a} ↔ #${b}`),
      h('p', { class: 'pair-facts' }, chip(edge.category),
        h('span', { class: 'big-score', title: 'final score' }, score2(edge.finalScore)),
        latest ? h('span', { class: 'pill verdict' }, `verdict: ${verdictText(latest)}`) : null)),
    ev.reasons && ev.reasons.length
      ? h('ul', { class: 'reasons card' }, ev.reasons.map((r) => h('li', {}, r)))
      : null,
    h('div', { class: 'pair-sides' }, prSide(ctx, pa, linesA, ev.sharedPaths), prSide(ctx, pb, linesB, ev.sharedPaths)),
    h('section', { class: 'card evidence', 'aria-labelledby': 'ev-h' },
      h('h2', { id: 'ev-h' }, 'What they share'),
      h('div', { class: 'ev-grid' },
        h('div', {}, h('h3', {}, 'Production paths'), list(ev.sharedPaths, 'paths', true)),
        h('div', {}, h('h3', {}, 'Symbols'), list(ev.sharedSymbols, 'chips', true)),
        h('div', {}, h('h3', {}, 'Test names'), list(ev.sharedTests, '', true)),
        h('div', {}, h('h3', {}, 'References'), list(ev.sharedRefs)),
        h('div', {}, h('h3', {}, 'Hunks'), list(hunks)),
        flags.length ? h('div', {}, h('h3', {}, 'Also'), list(flags)) : null,
        ev.sharedMetaPaths && ev.sharedMetaPaths.length
          ? h('div', {}, h('h3', {}, 'Meta files (not scored)'), list(ev.sharedMetaPaths, 'paths', true)) : null)),
    h('section', { class: 'card scores', 'aria-labelledby': 'sc-h' },
      h('h2', { id: 'sc-h' }, 'Signals'),
      h('p', { class: 'muted small' }, `Change score carried by the ${sc.primary || 'production'} channel. “No evidence” means a side had nothing to compare.`),
      h('div', { class: 'bars' }, SIGNALS.map(([k, label, hint]) => scoreBar(label, sc[k], hint))),
      h('h3', {}, 'Combined'),
      h('div', { class: 'bars' }, DERIVED.map(([k, label]) => scoreBar(label, sc[k])))),
    h('section', { class: 'card', 'aria-labelledby': 'fb-h' }, h('h2', { id: 'fb-h' }, 'Your verdict'), fbBox));
}
