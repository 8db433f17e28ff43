// Acting on a set from the dashboard: first a plan that says exactly what would be written to
// which PRs, then an explicit apply, whose per-step outcome (done, skipped, refused with the
// reason, failed with GitHub's answer) is shown as it comes.

import { api } from './api.js';
import { h, put, OUTCOME_CLASS } from './dom.js';
import { getActor } from './feedback.js';

const KIND_NAMES = {
  close_duplicates: 'Close duplicates',
  add_label: 'Add a label',
  remove_label: 'Remove a label',
  not_duplicate: 'Not duplicate',
};

/** The outcome of each step, from the plan's recorded results. */
function stepList(plan) {
  const byStep = new Map((plan.results || []).map((r) => [r.step, r]));
  return h('ol', { class: 'plan-steps' }, plan.steps.map((s) => {
    const r = byStep.get(s.step);
    return h('li', { class: 'plan-step', 'data-step': s.step, 'data-outcome': r ? r.outcome : 'planned' },
      h('div', { class: 'plan-step-head' },
        h('span', {}, s.summary),
        r ? h('span', { class: `pill ${OUTCOME_CLASS[r.outcome] || ''}` }, r.outcome) : null),
      r && r.outcome !== 'done' ? h('p', { class: 'reason' }, r.detail) : null,
      r && r.githubStatus ? h('p', { class: 'reason' }, `GitHub answered ${r.githubStatus}`,
        r.githubAnswer && r.githubAnswer.url ? ' · ' : '',
        r.githubAnswer && r.githubAnswer.url ? h('a', { href: r.githubAnswer.url, target: '_blank', rel: 'noopener noreferrer' }, 'see it') : '') : null,
      s.body ? h('details', { class: 'plan-body' }, h('summary', {}, 'Comment text'), h('pre', {}, s.body)) : null);
  }));
}

function planBox(ctx, plan, status) {
  const warnings = (plan.params && plan.params.warnings) || [];
  return h('div', { class: 'plan', 'data-plan-id': plan.planId, 'data-status': plan.status },
    h('p', { class: 'plan-title' }, h('strong', {}, `${KIND_NAMES[plan.kind] || plan.kind}: `),
      plan.status === 'planned'
        ? `${plan.steps.length} step${plan.steps.length === 1 ? '' : 's'} planned. Nothing is written until you apply.`
        : `plan ${plan.status}.`),
    warnings.length ? h('ul', { class: 'notice warn' }, warnings.map((w) => h('li', {}, w))) : null,
    stepList(plan),
    status);
}

/** The act panel of a set, given the repository's settings (`GET /settings`). */
export function actPanel(ctx, set, settings) {
  const box = h('div', { class: 'act', 'aria-live': 'polite' });
  const status = h('p', { class: 'fb-status', role: 'status' });
  const writes = settings && settings.writes && settings.writes.possible;
  const allowed = settings ? settings.effective.actions : { closeDuplicates: false, labels: false };
  const repoId = ctx.repo.repoId;

  async function plan(body) {
    put(status, 'Planning…');
    status.className = 'fb-status';
    try {
      const p = await api(`/repos/${repoId}/plans`, {
        method: 'POST', body: { ...body, setId: set.setId, actor: getActor() || undefined },
      });
      show(p);
    } catch (err) {
      if (err.name === 'AbortError') return;
      status.className = 'fb-status bad';
      put(status, `Not planned: ${err.message}`);
    }
  }

  function show(p) {
    const applyStatus = h('p', { class: 'fb-status', role: 'status' });
    const apply = h('button', {
      type: 'button', class: 'btn primary small apply',
      onclick: async () => {
        apply.disabled = true;
        put(applyStatus, 'Applying… each write re-reads GitHub first.');
        try {
          let cur = await api(`/repos/${repoId}/plans/${p.planId}/apply`, { method: 'POST', body: {} });
          while (cur.status === 'applying') {
            await new Promise((r) => setTimeout(r, 700));
            cur = await api(`/repos/${repoId}/plans/${p.planId}`, { signal: ctx.signal });
          }
          const done = cur.status === 'done';
          const fresh = planBox(ctx, cur, h('p', { class: `fb-status ${done ? 'ok' : 'bad'}`, role: 'status' },
            done ? 'Applied. Every step is in the activity log.'
              : 'Some steps were refused or failed (see each step); the others were made. Every step is in the activity log.',
            ' ', h('a', { href: ctx.href('activity', { repo: repoId }) }, 'Activity')));
          put(box, fresh);
        } catch (err) {
          if (err.name === 'AbortError') return;
          apply.disabled = false;
          applyStatus.className = 'fb-status bad';
          put(applyStatus, `Not applied: ${err.message}`);
        }
      },
    }, 'Apply');
    const cancel = h('button', { type: 'button', class: 'btn small ghost', onclick: () => put(box, buttons()) }, 'Cancel');
    put(box, planBox(ctx, p, h('div', {}, h('div', { class: 'fb-buttons' }, apply, cancel), applyStatus)));
  }

  function buttons() {
    const label = h('input', {
      type: 'text', class: 'label-name', maxlength: 50, placeholder: 'label', 'aria-label': 'Label name',
    });
    const kids = [];
    if (!writes) {
      kids.push(h('p', { class: 'muted small' }, `Writing to GitHub is off: ${(settings && settings.writes && settings.writes.reason) || 'unknown'}. `,
        h('a', { href: ctx.href('settings', { repo: repoId }) }, 'Settings')));
    } else if (!allowed.closeDuplicates && !allowed.labels) {
      kids.push(h('p', { class: 'muted small' }, 'This repository allows no writes: set ',
        h('code', {}, 'close_duplicates'), ' or ', h('code', {}, 'labels'), ' under ', h('code', {}, '[actions]'),
        ' in ', h('code', {}, '.github/clawtriage.toml'), '. ', h('a', { href: ctx.href('settings', { repo: repoId }) }, 'Settings')));
    }
    const group = h('div', { class: 'fb-buttons', role: 'group', 'aria-label': 'Plan an action' });
    if (writes && allowed.closeDuplicates) {
      group.append(h('button', {
        type: 'button', class: 'btn small plan-close',
        onclick: () => plan({ kind: 'close_duplicates', keep: set.keep.number }),
      }, `Plan: close the others as duplicates of #${set.keep.number}`));
    }
    if (writes && allowed.labels) {
      group.append(label,
        h('button', { type: 'button', class: 'btn small plan-label-add', onclick: () => plan({ kind: 'add_label', label: label.value }) }, 'Plan: add label'),
        h('button', { type: 'button', class: 'btn small plan-label-remove', onclick: () => plan({ kind: 'remove_label', label: label.value }) }, 'Plan: remove label'));
    }
    group.append(h('button', {
      type: 'button', class: 'btn small plan-not-duplicate', onclick: () => plan({ kind: 'not_duplicate' }),
    }, 'Plan: not duplicate'));
    kids.push(group, status);
    return h('div', {}, kids);
  }

  put(box, buttons());
  return h('section', { class: 'act-wrap', 'aria-label': 'Act on GitHub' }, h('h3', {}, 'Act'), box);
}
