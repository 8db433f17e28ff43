// ClawTriage dashboard: a hash router over seven views (duplicate sets, the triage queue and
// search, a pair's evidence, one PR, scans, activity, settings) plus the token form shown when
// the API answers 401. Plain ES modules, no build.
// Routes: #/sets?repo=&minScore=&cat=&state=&path=&q=&open=
//         #/queue?repo=&state=&review=&order=&q=&author=&label=&path=&base=&agent=
//         #/pair?repo=&a=&b=   #/pr?repo=&n=   #/scans   #/activity?repo=   #/settings?repo=

import { ApiError, api, clearToken, getToken, setToken } from './js/api.js';
import { h, put, loading, errorBox, empty } from './js/dom.js';
import { setsView } from './js/sets.js';
import { pairView } from './js/pair.js';
import { prView } from './js/pr.js';
import { scansView } from './js/scans.js';
import { queueView } from './js/queue.js';
import { activityView } from './js/activity.js';
import { settingsView } from './js/settings.js';

const main = document.getElementById('main');
const tools = document.getElementById('top-tools');

const VIEWS = {
  sets: setsView, queue: queueView, pair: pairView, pr: prView, scans: scansView,
  activity: activityView, settings: settingsView,
};

let current = null; // { abort: AbortController }
let reposCache = null;
let lastRouteName = null;

export function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const name = VIEWS[path] ? path : 'sets';
  return { name, params: new URLSearchParams(query || '') };
}

/** Builds a `#/name?…` link. */
export function href(name, params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return `#/${name}${s ? `?${s}` : ''}`;
}

/** Changes the URL; `replace` keeps history clean and skips re-rendering when `quiet`. */
export function go(name, params, { replace = false, quiet = false } = {}) {
  const url = href(name, params);
  if (quiet) {
    history.replaceState(null, '', url);
    return;
  }
  if (replace) {
    history.replaceState(null, '', url);
    render();
  } else if (location.hash === url) {
    render();
  } else {
    location.hash = url;
  }
}

async function repos(signal) {
  if (!reposCache) reposCache = (await api('/repos', { signal })).repos;
  return reposCache;
}

function renderTools(ctx) {
  const items = [];
  if (ctx && ctx.repos && ctx.repos.length > 1) {
    const sel = h('select', {
      id: 'repo-select', 'aria-label': 'Repository',
      onchange: (e) => go(ctx.name === 'scans' ? 'scans' : 'sets', { repo: e.target.value }),
    }, ctx.repos.map((r) => {
      const o = h('option', { value: r.repoId }, `${r.owner}/${r.name}`);
      if (ctx.repo && r.repoId === ctx.repo.repoId) o.selected = true;
      return o;
    }));
    items.push(sel);
  } else if (ctx && ctx.repo) {
    items.push(h('span', { class: 'repo-name' }, `${ctx.repo.owner}/${ctx.repo.name}`));
  }
  if (getToken()) {
    items.push(h('button', {
      type: 'button', class: 'btn small ghost',
      onclick: () => { clearToken(); reposCache = null; render(); },
    }, 'Forget token'));
  }
  put(tools, items);
  for (const a of document.querySelectorAll('[data-nav]')) {
    const active = ctx && (a.dataset.nav === ctx.name || (a.dataset.nav === 'sets' && ctx.name === 'pair') || (a.dataset.nav === 'queue' && ctx.name === 'pr'));
    if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    if (ctx && ctx.repo) a.href = href(a.dataset.nav, { repo: ctx.repo.repoId });
  }
}

function tokenForm(refused) {
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'current-password',
    required: true, spellcheck: 'false', autocapitalize: 'off',
  });
  const form = h('form', {
    class: 'card token-form',
    onsubmit: (e) => {
      e.preventDefault();
      const v = input.value.trim();
      if (!v) return;
      setToken(v);
      reposCache = null;
      render();
    },
  },
  h('h1', {}, 'Dashboard token'),
  refused
    ? h('p', { class: 'notice bad', role: 'alert' }, 'The appliance refused that token. Check DASHBOARD_TOKEN and try again.')
    : h('p', {}, 'This appliance asks for its dashboard token (the DASHBOARD_TOKEN setting).'),
  h('label', { for: 'token' }, 'Token'),
  input,
  h('p', { class: 'muted small' }, 'Kept in this tab’s session storage only; it is never put in the URL.'),
  h('button', { type: 'submit', class: 'btn primary' }, 'Continue'));
  return form;
}

/** Renders the current route; each render cancels the previous one's requests and timers. */
export async function render() {
  if (current) current.abort.abort();
  const abort = new AbortController();
  current = { abort };
  const { name, params } = parseRoute();
  const routeChanged = name !== lastRouteName;
  lastRouteName = name;
  put(main, loading());
  const ctx = { name, params, signal: abort.signal, main, repos: null, repo: null, go, href, refresh: render };
  try {
    if (name !== 'scans' || params.get('repo')) {
      ctx.repos = await repos(abort.signal);
      const wanted = Number(params.get('repo'));
      ctx.repo = ctx.repos.find((r) => r.repoId === wanted) || ctx.repos[0] || null;
    }
    renderTools(ctx);
    if (name !== 'scans' && !ctx.repo) {
      put(main, h('h1', {}, 'Duplicate sets'), empty('No repository has been scanned yet.',
        h('p', {}, 'Start a scan with ', h('code', {}, 'clawtriage trigger --owner OWNER --repo REPO --wait'),
          ', then come back. '), h('a', { href: '#/scans' }, 'See scans')));
      return;
    }
    await VIEWS[name](ctx);
  } catch (err) {
    if (err && err.name === 'AbortError') return;
    if (abort.signal.aborted) return;
    if (err instanceof ApiError && err.status === 401) {
      const hadToken = Boolean(getToken());
      if (hadToken) clearToken();
      renderTools(null);
      put(main, tokenForm(hadToken));
      main.querySelector('#token').focus();
      return;
    }
    put(main, errorBox(err, render));
    return;
  }
  if (routeChanged) {
    const heading = main.querySelector('h1');
    (heading || main).setAttribute('tabindex', '-1');
    (heading || main).focus({ preventScroll: true });
  }
}

// The skip link must not touch the hash: the hash is the route.
document.querySelector('.skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', render);
render();
