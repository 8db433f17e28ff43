// End-to-end test of the dashboard in Debian's Chromium, driven by playwright-core.
//
//   node dashboard/tests/e2e.mjs <base-url> <dashboard-token> <screenshot-dir>
//
// With OPS_TOKEN set it also starts a scan of bench/playwright and watches it on the scans view.
// Against an appliance that has scanned a repository with duplicates and requires the token:
// meets the 401 and enters the token, loads the sets view, opens a set, follows a link to its
// evidence, records feedback and sees it applied (also after a reload), visits the PR and scan
// views, searches PRs (title words, author, changed path) and filters sets by path with the
// query kept in the URL, plans "close duplicates" on a set, checks the plan, applies it and
// follows it to done, reads the activity and settings views, checks there is no horizontal
// scrolling at 390 px and that nothing breaks the CSP, and saves screenshots at desktop and phone
// widths into <screenshot-dir>. Exits non-zero on failure. The repository must allow
// `close_duplicates` in its settings and have the App installed (tests/dashboard_e2e.rs).

import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';

const [base, token, outDir] = process.argv.slice(2);
if (!base || !token || !outDir) {
  console.error('usage: node e2e.mjs <base-url> <dashboard-token> <screenshot-dir>');
  process.exit(2);
}
const shots = resolve(outDir);
mkdirSync(shots, { recursive: true });
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const T = 20_000;

const started = Date.now();
const step = (msg) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
let failed = false;

async function noHorizontalScroll(page, what) {
  const r = await page.evaluate(() => {
    const w = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > w + 1 && e.getClientRects().length)
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}.${e.className} (${Math.round(e.getBoundingClientRect().right)}px)`);
    return { scroll: document.documentElement.scrollWidth, w, wide };
  });
  check(r.scroll <= r.w, `${what}: page is ${r.scroll}px wide in a ${r.w}px viewport; too wide: ${r.wide.join(', ')}`);
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  const page = await context.newPage();
  page.setDefaultTimeout(T);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The 401 and 404 the test provokes on purpose are logged by Chromium as failed loads.
    if (m.type() === 'error' && !/status of 40[14]/.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  // 1. The API answers 401: the token form appears. A wrong token is refused plainly.
  step(`open ${base}`);
  await page.goto(`${base}/`);
  await page.locator('#token').waitFor();
  step('token form shown after the 401');
  await page.fill('#token', 'not-the-token');
  await page.press('#token', 'Enter');
  await page.getByText('refused that token').waitFor();
  await page.fill('#token', token);
  await page.getByRole('button', { name: 'Continue' }).click();

  // 2. The sets view, in API order.
  await page.locator('details.set').first().waitFor();
  const nSets = await page.locator('details.set').count();
  step(`sets view: ${nSets} sets`);
  check(nSets > 0, 'at least one duplicate set');
  check(!page.url().includes(token), 'the token is not in the URL');
  check(await page.evaluate(() => sessionStorage.getItem('clawtriage.dashboardToken')) === token, 'token kept in session storage');
  const apiOrder = await page.evaluate(async (t) => {
    const repos = await (await fetch('/api/repos', { headers: { Authorization: `Bearer ${t}` } })).json();
    const r = repos.repos[0].repoId;
    const s = await (await fetch(`/api/repos/${r}/duplicate-sets?limit=20`, { headers: { Authorization: `Bearer ${t}` } })).json();
    return { repoId: r, ids: s.sets.map((x) => x.setId) };
  }, token);
  const shownOrder = await page.locator('details.set').evaluateAll((els) => els.map((e) => e.dataset.setId));
  check(JSON.stringify(shownOrder.slice(0, apiOrder.ids.length)) === JSON.stringify(apiOrder.ids), 'sets shown in API order');

  // The skip link moves focus without changing the route.
  const before = page.url();
  await page.locator('.skip').focus();
  await page.keyboard.press('Enter');
  check(page.url() === before && await page.evaluate(() => document.activeElement.id) === 'main', 'skip link focuses the content');

  // 3. Open a set with at least one member that is not the base, by keyboard.
  const set = page.locator('details.set').filter({ has: page.locator('.fb-base-is') }).first();
  const setId = await set.getAttribute('data-set-id');
  await set.locator('summary').focus();
  await page.keyboard.press('Enter');
  await set.locator('.members li').first().waitFor();
  check(await set.evaluate((d) => d.open), 'the set opened with the keyboard');
  check(page.url().includes(`open=${setId}`), 'the open set is kept in the URL');
  const members = await set.locator('.members li').count();
  check(members >= 2, 'an open set lists its members');
  check(await set.locator('.members a.gh').count() === members, 'each member links to GitHub');
  check(await set.locator('.role-base, .role-base-keep').count() === 1, 'exactly one base is marked');
  check(await set.locator('.picks').innerText().then((t) => /Base/.test(t) && /Keep/.test(t)), 'base and keep with reasons');
  step(`opened ${setId} (${members} members)`);
  await page.evaluate(() => { document.activeElement.blur(); window.scrollTo(0, 0); });
  await page.mouse.move(1, 1);
  await page.screenshot({ path: `${shots}/desktop-sets.png` });

  // 4. Filters live in the URL.
  await page.fill('#f-min', '0.9');
  await page.press('#f-min', 'Enter');
  await page.waitForURL(/minScore=0\.9/);
  await page.locator('.summary').getByText('score ≥ 0.9').waitFor();
  const strong = await page.locator('details.set').count();
  check(strong > 0 && strong <= nSets, `min score 0.9 keeps ${strong} of ${nSets} sets`);
  step(`min score filter kept in the URL (${strong} sets at ≥ 0.9)`);
  await page.goBack();
  await page.waitForURL((u) => !u.href.includes('minScore'));
  await set.locator('.members li').first().waitFor();

  // 5. A pair's evidence.
  await set.locator('.edge-link').first().click();
  await page.locator('section.evidence').waitFor();
  await page.mouse.move(1, 1);
  const bars = await page.locator('.scores .bar').count();
  check(bars >= 10, `score bars shown (${bars})`);
  check(await page.locator('.pair-sides .side').count() === 2, 'both PRs side by side');
  const reasons = await page.locator('.reasons li').count();
  step(`pair view: ${bars} score bars, ${reasons} reasons`);
  await page.screenshot({ path: `${shots}/desktop-pair.png`, fullPage: true });
  // Pair feedback, signed with a name, applied after a reload.
  await page.fill('.feedback input.actor', 'e2e maintainer');
  await page.press('.feedback input.actor', 'Tab');
  await page.locator('.feedback button[data-verdict=duplicate]').click();
  await page.locator('.fb-status.ok').getByText('Saved: duplicate').waitFor();
  await page.reload();
  await page.locator('.pair-facts .verdict').getByText('duplicate').waitFor();
  await page.locator('.fb-status').getByText('by e2e maintainer').waitFor();
  step('pair verdict saved and shown after a reload');

  // 6. Set feedback: "base is this one" on a member that is not the base.
  await page.goto(`${base}/#/sets?repo=${apiOrder.repoId}&open=${setId}`);
  const openSet = page.locator(`details.set[data-set-id="${setId}"]`);
  await openSet.locator('.members li').first().waitFor();
  const newBase = await openSet.locator('.fb-base-is').first().getAttribute('data-base');
  await openSet.locator('.fb-base-is').first().click();
  await openSet.locator(`.members li[data-number="${newBase}"] .role-base, .members li[data-number="${newBase}"] .role-base-keep`).waitFor();
  await openSet.locator('.fb-status').getByText(`base is #${newBase}`).waitFor();
  check((await openSet.locator('.picks').innerText()).includes(`maintainer marked #${newBase}`), 'the base reason names the maintainer');
  step(`marked #${newBase} as the base; applied`);
  await page.reload();
  await openSet.locator('.members li').first().waitFor();
  check(await openSet.locator(`.members li[data-number="${newBase}"] .role-base, .members li[data-number="${newBase}"] .role-base-keep`).count() === 1,
    'the new base is still shown after a reload');
  step('base verdict still applied after a reload');

  // 7. The PR view.
  await openSet.locator('.members a.member-title').first().click();
  await page.locator('.cands, .state.empty').first().waitFor();
  check(await page.locator('.channels .legend li').count() === 4, 'four channels with sizes');
  step(`PR view: ${await page.locator('.cands li').count()} candidates`);
  await page.screenshot({ path: `${shots}/desktop-pr.png` });

  // 8. The triage queue leads to PRs; unknown PRs and empty filters say so plainly.
  await page.locator('nav [data-nav=queue]').click();
  await page.locator('.qitem').first().waitFor();
  const queued = await page.locator('.qitem').count();
  check(await page.locator('.qitem .suggestion').count() > 0, 'queue items show their top suggestion');
  step(`queue view: ${queued} PRs`);
  await page.screenshot({ path: `${shots}/desktop-queue.png` });
  await page.goto(`${base}/#/pr?repo=${apiOrder.repoId}&n=999999`);
  await page.locator('.state.error').getByText('no PR #999999').waitFor();
  await page.goto(`${base}/#/sets?repo=${apiOrder.repoId}&cat=none`);
  await page.locator('.state.empty').waitFor();
  await page.goto(`${base}/#/sets?repo=${apiOrder.repoId}&cat=RELATED&minScore=1`);
  await page.locator('.state.empty, details.set').first().waitFor();
  step('error and empty states');

  // 9. Scans.
  await page.locator('nav [data-nav=scans]').click();
  await page.locator('article.scan').first().waitFor();
  check(await page.locator('article.scan.st-done').count() >= 1, 'the finished scan is listed');
  step('scans view');
  // A scan started now shows up and finishes on the open page, without a reload.
  if (process.env.OPS_TOKEN) {
    const snapshot = `live-${Date.now()}`;
    const r = await fetch(`${base}/api/ops/public-scan`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${process.env.OPS_TOKEN}` },
      body: JSON.stringify({ owner: 'bench', repo: 'playwright', snapshot }),
    });
    check(r.status === 202, `scan trigger answered ${r.status}`);
    await page.locator(`article.scan.st-done[data-job-id$=":${snapshot}"]`).waitFor({ timeout: 30_000 });
    step('a new scan appeared and finished live');
  }
  await page.screenshot({ path: `${shots}/desktop-scans.png` });

  // 9b. Search: a set member's title words and author, then a path it changes; the query lives
  // in the URL, so a link reproduces the view.
  const probe = await page.evaluate(async ({ t, r }) => {
    const H = { headers: { Authorization: `Bearer ${t}` } };
    const sets = await (await fetch(`/api/repos/${r}/duplicate-sets?limit=20`, H)).json();
    const m = sets.sets[0].members[0];
    const pr = await (await fetch(`/api/repos/${r}/prs/${m.number}`, H)).json();
    return { n: m.number, title: pr.title, author: pr.author, path: pr.files[0].path, sets: sets.total };
  }, { t: token, r: apiOrder.repoId });
  const word = probe.title.split(/[^A-Za-z0-9]+/).filter((w) => w.length >= 4).sort((a, b) => b.length - a.length)[0];
  await page.goto(`${base}/#/queue?repo=${apiOrder.repoId}`);
  await page.locator('#s-q').waitFor();
  await page.fill('#s-q', word);
  await page.fill('#s-author', probe.author);
  await page.press('#s-q', 'Enter');
  await page.waitForURL(new RegExp(`q=${encodeURIComponent(word)}`));
  await page.locator(`.qitem[data-number="${probe.n}"]`).waitFor();
  const byWords = await page.locator('.qitem').count();
  check(page.url().includes(`author=${encodeURIComponent(probe.author)}`), 'the author is in the URL');
  step(`search "${word}" by ${probe.author}: ${byWords} PRs, #${probe.n} among them`);
  await page.reload();
  await page.locator(`.qitem[data-number="${probe.n}"]`).waitFor();
  check(await page.inputValue('#s-q') === word, 'a reload keeps the search');
  const dir = probe.path.includes('/') ? probe.path.slice(0, probe.path.lastIndexOf('/') + 1) : probe.path;
  await page.goto(`${base}/#/queue?repo=${apiOrder.repoId}&path=${encodeURIComponent(dir)}`);
  await page.locator(`.qitem[data-number="${probe.n}"]`).waitFor();
  check(await page.inputValue('#s-path') === dir, 'the path is in the form');
  step(`path search ${dir}: ${await page.locator('.qitem').count()} PRs`);
  await page.goto(`${base}/#/queue?repo=${apiOrder.repoId}&q=fix`);
  await page.locator('.qitem, .state.empty').first().waitFor();
  await page.mouse.move(1, 1);
  await page.screenshot({ path: `${shots}/desktop-search.png` });
  await page.goto(`${base}/#/sets?repo=${apiOrder.repoId}&path=${encodeURIComponent(probe.path)}`);
  await page.locator('.summary').getByText(`touching ${probe.path}`).waitFor();
  const touching = await page.locator('details.set').count();
  check(touching >= 1 && touching <= probe.sets, `sets touching the path: ${touching} of ${probe.sets}`);
  step(`sets touching ${probe.path}: ${touching}`);

  // 9c. Plan, then apply: close the duplicates of a set's kept PR.
  const target = await page.evaluate(async ({ t, r, avoid }) => {
    const H = { headers: { Authorization: `Bearer ${t}` } };
    const sets = await (await fetch(`/api/repos/${r}/duplicate-sets?limit=100`, H)).json();
    const s = sets.sets.find((x) => x.setId !== avoid && x.members.every((m) => m.state === 'open')) || sets.sets[0];
    return { setId: s.setId, size: s.size, keep: s.keep.number };
  }, { t: token, r: apiOrder.repoId, avoid: setId });
  await page.goto(`${base}/#/sets?repo=${apiOrder.repoId}&open=${target.setId}`);
  const actOn = page.locator(`details.set[data-set-id="${target.setId}"]`);
  await actOn.locator('.members li').first().waitFor();
  await actOn.locator('.plan-close').click();
  await actOn.locator('.plan[data-status="planned"]').waitFor();
  const planned = await actOn.locator('.plan-step').count();
  check(planned === 2 * (target.size - 1), `the plan comments on and closes every member but #${target.keep} (${planned} steps)`);
  check((await actOn.locator('.plan-step').first().innerText()).includes(`duplicate of #${target.keep}`), 'the plan says what the comment says');
  step(`planned ${planned} writes on ${target.setId}; nothing written yet`);
  await actOn.locator('.plan-body summary').first().click();
  check((await actOn.locator('.plan-body pre').first().innerText()).includes('will not close it again'), 'the comment text is shown');
  await actOn.locator('.plan').scrollIntoViewIfNeeded();
  await page.mouse.move(1, 1);
  await page.screenshot({ path: `${shots}/desktop-plan.png` });
  await actOn.locator('.apply').click();
  await actOn.locator('.plan[data-status="done"]').waitFor({ timeout: 60_000 });
  check(await actOn.locator('.plan-step[data-outcome="done"]').count() === planned, 'every step done');
  step('applied: every step done');
  await page.screenshot({ path: `${shots}/desktop-applied.png` });
  await page.locator('nav [data-nav=activity]').click();
  await page.locator('.action[data-kind="close"][data-outcome="done"]').first().waitFor();
  check(await page.locator('.action[data-kind="close"]').count() === target.size - 1, 'each close is in the activity');
  await page.mouse.move(1, 1);
  await page.screenshot({ path: `${shots}/desktop-activity.png` });
  await page.locator('nav [data-nav=settings]').click();
  await page.locator('.settings-status.st-valid').waitFor();
  // A repository whose file has problems: each one on its line, and the defaults in force.
  const broken = await page.evaluate(async (t) => {
    const repos = await (await fetch('/api/repos', { headers: { Authorization: `Bearer ${t}` } })).json();
    return repos.repos.find((r) => r.owner === 'o').repoId;
  }, token);
  await page.goto(`${base}/#/settings?repo=${broken}`);
  await page.locator('.settings-status.st-invalid').waitFor();
  check(await page.locator('.file-line.bad').count() === 2, 'two lines are marked');
  check((await page.locator('.file-line[data-line="3"] .file-problem').innerText()).includes('line 3, column 20'), 'the problem sits on its line');
  check((await page.locator('.file-line[data-line="4"] .file-problem').innerText()).includes('unknown key `actions.label`'), 'an unknown key is named');
  step('activity and settings views (a bad file shows its problems on their lines)');
  await page.mouse.move(1, 1);
  await page.screenshot({ path: `${shots}/desktop-settings.png` });
  await page.goto(`${base}/#/settings?repo=${apiOrder.repoId}`);
  await page.locator('.settings-status.st-valid').waitFor();

  // 10. Phone width: no horizontal scrolling on any view.
  await page.setViewportSize({ width: 390, height: 844 });
  await noHorizontalScroll(page, 'scans at 390px');
  await page.screenshot({ path: `${shots}/phone-scans.png` });
  await page.goto(`${base}/#/sets?repo=${apiOrder.repoId}&open=${setId}`);
  await openSet.locator('.members li').first().waitFor();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.move(1, 1);
  await noHorizontalScroll(page, 'sets at 390px');
  await page.screenshot({ path: `${shots}/phone-sets.png` });
  await openSet.locator('.edge-link').first().click();
  await page.locator('section.evidence').waitFor();
  await page.mouse.move(1, 1);
  await noHorizontalScroll(page, 'pair at 390px');
  await page.screenshot({ path: `${shots}/phone-pair.png` });
  await openSet.page().goBack();
  await openSet.locator('.members a.member-title').first().click();
  await page.locator('.cands, .state.empty').first().waitFor();
  await noHorizontalScroll(page, 'PR at 390px');
  await page.locator('nav [data-nav=queue]').click();
  await page.locator('.qitem').first().waitFor();
  await noHorizontalScroll(page, 'queue at 390px');
  await page.goto(`${base}/#/queue?repo=${apiOrder.repoId}&q=${encodeURIComponent(word)}`);
  await page.locator(`.qitem[data-number="${probe.n}"]`).waitFor();
  await noHorizontalScroll(page, 'search at 390px');
  await page.screenshot({ path: `${shots}/phone-search.png` });
  await page.locator('nav [data-nav=activity]').click();
  await page.locator('.action').first().waitFor();
  await noHorizontalScroll(page, 'activity at 390px');
  await page.locator('nav [data-nav=settings]').click();
  await page.locator('.settings-status').waitFor();
  await noHorizontalScroll(page, 'settings at 390px');
  step('no horizontal scrolling at 390px on any view');

  // 11. Forgetting the token brings the form back.
  await page.getByRole('button', { name: 'Forget token' }).click();
  await page.locator('#token').waitFor();
  check(await page.evaluate(() => sessionStorage.getItem('clawtriage.dashboardToken')) === null, 'token forgotten');

  check(problems.length === 0, `no page errors or CSP violations:\n  ${problems.join('\n  ')}`);
  await context.close();
} catch (e) {
  failed = true;
  console.error(`[e2e] FAILED: ${e.stack || e}`);
  if (problems.length) console.error(`[e2e] page problems:\n  ${problems.join('\n  ')}`);
  try {
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) {
      await pages[0].screenshot({ path: `${shots}/failure.png`, fullPage: true });
      console.error(`[e2e] failure screenshot: ${shots}/failure.png`);
    }
  } catch { /* the browser may be gone */ }
} finally {
  await browser.close();
}
console.log(`[e2e] screenshots: ${shots}`);
console.log(failed ? '[e2e] FAILED' : `[e2e] passed in ${((Date.now() - started) / 1000).toFixed(1)}s`);
process.exit(failed ? 1 : 0);
