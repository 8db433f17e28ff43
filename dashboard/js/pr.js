// One PR: how much of it is production vs tests vs docs vs meta, its analysis, its candidates.

import { api } from './api.js';
import {
  h, put, age, chip, stateChip, ghLink, scoreBar, empty, dateTime, verdictText,
} from './dom.js';

const CHANNELS = [
  ['production', 'production'], ['tests', 'tests'], ['docs', 'docs'], ['meta', 'meta'],
];

/** A stacked bar of changed lines per channel, with a legend that carries the numbers. */
export function channelBar(sizes) {
  if (!sizes) return h('p', { class: 'muted small' }, 'Not analysed yet: no channel sizes.');
  const lines = CHANNELS.map(([k]) => {
    const c = sizes[k] || {};
    return (c.additions || 0) + (c.deletions || 0);
  });
  const total = lines.reduce((x, y) => x + y, 0);
  const bar = h('div', { class: 'stack', 'aria-hidden': 'true' });
  CHANNELS.forEach(([k], i) => {
    if (!lines[i]) return;
    const seg = h('span', { class: `seg ch-${k}` });
    seg.style.width = `${Math.max(1, (lines[i] / total) * 100)}%`;
    bar.append(seg);
  });
  return h('div', { class: 'channels' },
    total ? bar : null,
    h('ul', { class: 'legend' }, CHANNELS.map(([k, label], i) => {
      const c = sizes[k] || {};
      return h('li', {}, h('span', { class: `dot ch-${k}`, 'aria-hidden': 'true' }),
        h('span', {}, `${label}: `), h('strong', {}, `${c.files || 0} file${c.files === 1 ? '' : 's'}`),
        h('span', { class: 'muted' }, ` +${c.additions || 0} −${c.deletions || 0}`),
        total ? h('span', { class: 'muted' }, ` (${Math.round((lines[i] / total) * 100)}%)`) : null);
    })));
}

function analysisBox(a) {
  if (!a) return h('p', { class: 'muted' }, 'No analysis yet: a scan will analyse this PR.');
  const degraded = Array.isArray(a.degraded) ? a.degraded : [];
  return h('div', { class: 'analysis' },
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'status'), h('dd', {}, h('span', { class: `pill an-${a.status}` }, a.status))),
      h('div', {}, h('dt', {}, 'head'), h('dd', {}, h('code', {}, a.headSha.slice(0, 12)))),
      h('div', {}, h('dt', {}, 'diff from'), h('dd', {}, a.source || '—')),
      h('div', {}, h('dt', {}, 'candidates when analysed'), h('dd', {}, String(a.candidates))),
      h('div', {}, h('dt', {}, 'finished'), h('dd', {}, dateTime(a.finishedAt))),
      h('div', {}, h('dt', {}, 'versions'), h('dd', {}, `signature ${a.signatureVersion} · algorithm ${a.algorithmVersion} · config ${a.configVersion}`))),
    a.error ? h('p', { class: 'notice bad', role: 'alert' }, `Analysis failed: ${a.error}`) : null,
    degraded.length ? h('div', { class: 'notice warn' },
      h('p', {}, 'Analysed with limits (some of the diff was not compared):'),
      h('ul', {}, degraded.map((d) => h('li', {}, h('code', {}, d))))) : null);
}

function candidateRow(ctx, pr, c) {
  return h('li', { class: 'cand' },
    h('span', { class: 'rank', 'aria-label': `rank ${c.rank}` }, String(c.rank)),
    h('div', { class: 'cand-body' },
      h('a', { href: ctx.href('pair', { repo: ctx.repo.repoId, a: pr.number, b: c.candidatePrNumber }), class: 'member-title' },
        h('span', { class: 'num' }, `#${c.candidatePrNumber}`), ' ', c.candidateTitle || '(no title)'),
      h('div', { class: 'member-meta' }, chip(c.category), stateChip(c.candidateState),
        h('span', {}, 'by ', h('strong', {}, c.candidateAuthor)),
        ghLink(c.candidateUrl, 'GitHub', `#${c.candidatePrNumber} on GitHub`),
        c.feedback ? h('span', { class: 'pill verdict' }, `verdict: ${verdictText({ verdict: c.feedback })}`) : null),
      scoreBar('score', c.finalScore),
      c.evidence && c.evidence.reasons && c.evidence.reasons.length ? h('p', { class: 'reason' }, c.evidence.reasons[0]) : null));
}

export async function prView(ctx) {
  const repoId = ctx.repo.repoId;
  const n = Number(ctx.params.get('n'));
  const back = h('p', { class: 'crumbs' }, h('a', { href: ctx.href('sets', { repo: repoId }) }, '← Duplicate sets'));
  if (!n) {
    put(ctx.main, back, h('h1', {}, 'Pull request'), empty('This link does not name a PR.'));
    return;
  }
  const [pr, cands] = await Promise.all([
    api(`/repos/${repoId}/prs/${n}`, { signal: ctx.signal }),
    api(`/repos/${repoId}/prs/${n}/candidates?limit=20`, { signal: ctx.signal }),
  ]);
  put(ctx.main,
    back,
    h('div', { class: 'view-head' },
      h('h1', {}, h('span', { class: 'num' }, `#${pr.number}`), ' ', pr.title || '(no title)'),
      h('p', { class: 'member-meta' }, stateChip(pr.state, pr.draft), h('span', {}, 'by ', h('strong', {}, pr.author)),
        h('span', {}, 'opened ', age(pr.createdAt)), h('span', {}, 'into ', h('code', {}, pr.baseRef)),
        ghLink(pr.url, 'Open on GitHub'))),
    h('section', { class: 'card', 'aria-labelledby': 'ch-h' },
      h('h2', { id: 'ch-h' }, 'Where it changes things'),
      channelBar(pr.channelSizes),
      analysisBox(pr.analysis)),
    h('section', { class: 'card', 'aria-labelledby': 'cand-h' },
      h('h2', { id: 'cand-h' }, 'Candidates, strongest first'),
      cands.candidates.length
        ? h('ol', { class: 'cands' }, cands.candidates.map((c) => candidateRow(ctx, pr, c)))
        : empty('No candidates: nothing in this repository looks like this PR.')),
    pr.files && pr.files.length ? h('section', { class: 'card' },
      h('details', { class: 'files' }, h('summary', {}, `Files (${pr.files.length})`),
        h('ul', { class: 'ev-list files-list' }, pr.files.map((f) => h('li', {},
          h('code', {}, f.path), h('span', { class: 'muted small' }, ` ${f.channel} · ${f.status} +${f.additions} −${f.deletions}`),
          f.truncated ? h('span', { class: 'tag warn' }, 'truncated') : null))))) : null);
}
