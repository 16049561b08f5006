// The portal in a real browser: Debian's Chromium driven by playwright-core against the
// real server binary, with axe-core run on every page in both languages.
//
//   CONSENTRY_BIN=target/release/consentry node tests/browser/run.mjs
//
// CONSENTRY_DATABASE_URL picks the database (default: a fresh SQLite file);
// CHROMIUM the browser (default /usr/bin/chromium); SMOKE=1 runs one journey only.
// Screenshots go to tests/browser/screenshots/ (not committed).

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const bin = resolve(root, process.env.CONSENTRY_BIN ?? 'target/release/consentry');
const shots = join(here, 'screenshots');
const axeSource = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const smoke = process.env.SMOKE === '1';

let failures = 0;
const checks = [];
function check(name, ok, detail = '') {
  checks.push({ name, ok });
  if (!ok) failures += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok || !detail ? '' : ` — ${detail}`}`);
}

// ---------------------------------------------------------------------------------
// The server under test, on a free port, with its own data folder.

const dataDir = mkdtempSync(join(tmpdir(), 'consentry-browser-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const base = `http://127.0.0.1:${port}`;
const env = {
  ...process.env,
  CONSENTRY_BIND: `127.0.0.1:${port}`,
  CONSENTRY_PUBLIC_URL: base,
  CONSENTRY_DATA_DIR: join(dataDir, 'data'),
  CONSENTRY_DATABASE_URL: process.env.CONSENTRY_DATABASE_URL ?? `sqlite://${join(dataDir, 'consentry.db')}`,
  CONSENTRY_POLICIES_DIR: join(root, 'policies'),
  CONSENTRY_PORTAL_RATE_PER_MINUTE: '600',
  CONSENTRY_LOG: 'warn',
};
const server = spawn(bin, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
const stop = () => {
  server.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
};
process.on('exit', stop);

async function waitForServer() {
  for (let i = 0; i < 200; i += 1) {
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server did not start');
}

function token(role, sub) {
  return execFileSync(bin, ['token', '--role', role, '--sub', sub], { env }).toString().trim();
}

async function api(method, path, tokenValue, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${tokenValue}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function decision(service, subject, purpose) {
  const r = await api('POST', '/v1/decisions', service, { subject_id: subject, purpose });
  return r.body.decision;
}

// ---------------------------------------------------------------------------------
// Another site that links to the portal, as a shop's account page or an e-mail would.

function otherOrigin(links) {
  const site = createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><html lang="en"><title>Shop</title><body><h1>Your account</h1>
      ${links.map((l, i) => `<p><a id="link${i}" href="${l}">Manage your privacy choices</a></p>`).join('')}
      </body></html>`);
  });
  return new Promise((done) => site.listen(0, '127.0.0.1', () => done(site)));
}

// ---------------------------------------------------------------------------------
// Accessibility and screenshots of every page, in both window sizes.

async function audit(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }),
  );
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  check(
    `axe: no serious or critical violations on ${name}`,
    serious.length === 0,
    serious.map((v) => `${v.id} (${v.nodes.length}): ${v.nodes[0]?.target}`).join('; '),
  );
  const h1 = await page.locator('h1').count();
  check(`one h1 on ${name}`, h1 === 1, `${h1}`);
}

async function shoot(page, name) {
  await page.screenshot({ path: join(shots, `${name}-wide.png`), fullPage: true });
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, `${name}-narrow.png`), fullPage: true });
  await page.setViewportSize(size);
}

// The README shows these four, as a customer first sees them (the top of the window).
const readme = new Set(['centre-en', 'centre-ar', 'survey-followup-en', 'console']);

async function visit(page, name) {
  await audit(page, name);
  await shoot(page, name);
  if (readme.has(name)) {
    await page.screenshot({ path: join(shots, `readme-${name}.png`) });
  }
}

// ---------------------------------------------------------------------------------

async function main() {
  mkdirSync(shots, { recursive: true });
  await waitForServer();
  const service = token('service', 'shop');
  const admin = token('admin', 'ops');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    await api('PUT', '/v1/subjects/cust-en', service, { region: 'DE' });
    await api('PUT', '/v1/subjects/cust-other', service, { region: 'DE' });
    const link = (await api('POST', '/v1/subjects/cust-en/portal-sessions', service, {})).body.url;
    const site = await otherOrigin([link]);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();

    // A link on another site opens the centre.
    await page.goto(`http://127.0.0.1:${site.address().port}/`);
    await page.click('#link0');
    await page.waitForURL(`${base}/portal`);
    check('a link from another origin opens the centre', (await page.title()).includes('Your privacy choices'));
    const headers = (await page.request.get(`${base}/portal`)).headers();
    check('the centre sends a content security policy', headers['content-security-policy']?.includes("default-src 'self'"));
    const transfer = (await (await page.request.get(`${base}/portal`)).body()).length
      + (await (await page.request.get(`${base}/portal/static/portal.css`)).body()).length;
    check('the centre and its stylesheet weigh under 60 kB', transfer < 60_000, `${transfer} bytes`);
    await visit(page, 'centre-en');

    // Agree, then withdraw: the gate follows at once.
    const analytics = page.locator('li[data-purpose="analytics"]');
    await analytics.getByRole('button', { name: 'Agree' }).click();
    await page.waitForURL(/done=saved/);
    check('agreeing in the centre allows at the gate', (await decision(service, 'cust-en', 'analytics')) === 'allow');
    await page.locator('li[data-purpose="analytics"]').getByRole('button', { name: 'Decline' }).click();
    await page.waitForURL(/done=saved/);
    check('withdrawing in the centre denies at the gate at once', (await decision(service, 'cust-en', 'analytics')) === 'deny');
    check('the page says why', (await page.locator('#why-analytics').innerText()).startsWith('Off: you said no on'));

    // The keyboard reaches every control, with a visible focus.
    await page.keyboard.press('Tab');
    const skip = await page.evaluate(() => document.activeElement?.className);
    check('the first Tab reaches the skip link', skip === 'skip', skip);

    if (!smoke) {
      // Arabic: right to left, mirrored layout.
      await page.click('a[hreflang="ar"]');
      await page.waitForLoadState();
      const dir = await page.getAttribute('html', 'dir');
      check('Arabic pages are right to left', dir === 'rtl' && (await page.getAttribute('html', 'lang')) === 'ar');
      const text = await page.locator('li[data-purpose="analytics"] .purpose-text').boundingBox();
      const buttons = await page.locator('li[data-purpose="analytics"] form.choice').boundingBox();
      check('the layout mirrors: the buttons sit to the left of the text in Arabic', buttons.x < text.x, `${buttons.x} vs ${text.x}`);
      await visit(page, 'centre-ar');
      await page.goto(`${base}/portal/history`);
      await visit(page, 'history-ar');
      await page.goto(`${base}/portal/history?lang=en`);
      await visit(page, 'history-en');

      // Preferences: an error is tied to its field.
      await page.goto(`${base}/portal`);
      await page.fill('#timezone', 'Mars/Olympus');
      await page.click('form.prefs button[type="submit"]');
      const invalid = await page.getAttribute('#timezone', 'aria-describedby');
      check('a wrong field names its error', invalid === 'timezone-error');
      await visit(page, 'preferences-error-en');

      // Download my data: the request, then the bundle.
      await page.goto(`${base}/portal`);
      await page.click('form[action="/portal/requests/access"] button');
      await page.waitForURL(/done=request/);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.locator('a[href$="/bundle"]').first().click(),
      ]);
      const bundle = JSON.parse(readFileSync(await download.path(), 'utf8'));
      check('the data download is the access bundle', bundle.bundle_version === 4 && bundle.subject?.id === 'cust-en', JSON.stringify(bundle).slice(0, 120));

      // Another customer's page is not reachable, and a used link says so.
      const theirs = (await api('POST', '/v1/dsar', service, { subject_id: 'cust-other', kind: 'access' })).body.id;
      const other = await page.goto(`${base}/portal/requests/${theirs}/bundle`);
      check("another customer's bundle is not found", other.status() === 404);
      await visit(page, 'not-found-en');
      const replay = await page.goto(link);
      check('a replayed link is refused with a page', replay.status() === 410 && (await page.content()).includes('already used'));
      await visit(page, 'link-used-en');

      // The NPS e-mail link, answered as a detractor.
      const survey = JSON.parse(readFileSync(join(root, 'templates', 'surveys', 'nps.json'), 'utf8'));
      // The template waits a day after onboarding; the e-mail in this story goes at once.
      await api('POST', '/v1/surveys', admin, { ...survey, status: 'active', targeting: { ...survey.targeting, delay_seconds: 0 } });
      await api('POST', '/v1/events', service, { subject_id: 'cust-en', name: 'onboarding.completed' });
      const surveyLink = (await api('POST', `/v1/surveys/${survey.key}/links`, service, { subject_id: 'cust-en' })).body.url;
      // The e-mail is opened in another browser: its session replaces no other.
      const mail = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const answer = await mail.newPage();
      await answer.goto(surveyLink);
      await visit(answer, 'survey-en');
      await answer.check('input[name="q.score"][value="3"]', { force: true });
      await answer.click('form.survey button[type="submit"]');
      await answer.waitForLoadState();
      check('a detractor gets the follow-up question', (await answer.locator('textarea[name="q.why_low"]').count()) === 1);
      await visit(answer, 'survey-followup-en');
      await answer.fill('textarea[name="q.why_low"]', 'Setup took too long <script>alert(1)</script>');
      await answer.click('form.survey button[type="submit"]');
      check('the survey thanks the customer', (await answer.content()).includes('Thank you!'));
      await visit(answer, 'survey-thanks-en');
      const profile = await api('GET', '/v1/subjects/cust-en/profile', service);
      check('nps.category is on the profile', profile.body.attributes?.['nps.category']?.value === 'detractor', JSON.stringify(profile.body));
      const followups = await api('GET', `/v1/surveys/${survey.key}/followups`, service);
      check('the detractor follow-up is open', followups.body.followups?.length === 1);
      await answer.goto(`${base}/portal/survey?lang=ar`);
      await visit(answer, 'survey-thanks-ar');
      await mail.close();

      // The compliance console: rates, NPS with its band, the follow-up closed from the
      // page, due requests, the chain verified and an export downloaded.
      const compliance = token('compliance', 'dpo');
      const consoleLink = (await api('POST', '/v1/console-sessions', compliance, {})).body.url;
      const officer = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
      const desk = await officer.newPage();
      await desk.goto(consoleLink);
      await desk.waitForURL(`${base}/console`);
      await visit(desk, 'console-overview-en');
      await desk.goto(`${base}/console/consents`);
      check('the console shows consent rates with a chart', (await desk.locator('svg[role="img"]').count()) > 0);
      await visit(desk, 'console-rates-en');
      await desk.goto(`${base}/console/surveys`);
      check('the NPS trend has its margin-of-error band', (await desk.locator('svg polygon, svg path.chart-band, svg .chart-band').count()) > 0);
      await visit(desk, 'console');
      await desk.goto(`${base}/console/surveys?lang=ar`);
      await visit(desk, 'console-surveys-ar');
      await desk.goto(`${base}/console/followups?lang=en`);
      check('the detractor follow-up is in the console', (await desk.locator('[data-followup]').count()) === 1);
      await visit(desk, 'console-followups-en');
      await desk.locator('[data-followup] textarea[name="resolution"]').fill('Called the customer back');
      await desk.locator('[data-followup] button[type="submit"]').click();
      await desk.waitForURL(/done=closed/);
      const closed = await api('GET', `/v1/surveys/${survey.key}/followups`, service);
      check('the follow-up closes from the console', closed.body.followups?.[0]?.status === 'closed');
      // Nothing is due within a week on a fresh server (deadlines are a month away);
      // the integration tests move the clock to list due and overdue requests.
      const due = await desk.goto(`${base}/console/requests`);
      check('the due-requests page answers', due.status() === 200);
      await visit(desk, 'console-requests-en');
      // A completed erasure shows each recipient of the customer's data, told or not.
      await api('PUT', '/v1/subjects/cust-gone', service, { region: 'DE' });
      const erasure = await api('POST', '/v1/dsar', service, { subject_id: 'cust-gone', kind: 'erasure' });
      for (const status of ['verified', 'in_progress', 'completed']) {
        await api('PATCH', `/v1/dsar/${erasure.body.id}`, compliance, { status });
      }
      await desk.goto(`${base}/console/requests/${erasure.body.id}?lang=en`);
      check('a completed erasure lists its recipients', (await desk.locator('tr.recipient-pending').count()) === 1);
      await visit(desk, 'console-request-recipients-en');
      await desk.goto(`${base}/console/requests/${erasure.body.id}?lang=ar`);
      await visit(desk, 'console-request-recipients-ar');
      await desk.goto(`${base}/console/requests?lang=en`);
      await desk.goto(`${base}/console/audit`);
      await visit(desk, 'console-audit-en');
      await desk.click('form[action="/console/audit/verify"] button');
      check('the chain verifies with a signed head', (await desk.locator('[data-verified="ok"]').count()) === 1
        && (await desk.inputValue('#signed-head')).split('.').length === 3);
      await visit(desk, 'console-verified-en');
      await desk.goto(`${base}/console/audit`);
      await desk.check('#format-csv');
      const [exported] = await Promise.all([
        desk.waitForEvent('download'),
        desk.click('form[action="/console/audit/export"] button[type="submit"]'),
      ]);
      const csv = readFileSync(await exported.path(), 'utf8');
      check('the audit export downloads as CSV with its seal', csv.startsWith('type,seq,') && csv.includes('checkpoint'), csv.slice(0, 80));
      await desk.goto(`${base}/console/audit?lang=ar`);
      await visit(desk, 'console-audit-ar');
      // A console session reaches no customer's centre.
      const centre = await desk.goto(`${base}/portal`);
      check('a console session cannot open a customer centre', centre.status() === 404);
      await officer.close();

      // Delete my data: a confirmation, then the gate denies.
      await page.goto(`${base}/portal`);
      await page.click('a[href="/portal/delete"]');
      await visit(page, 'delete-confirm-en');
      await page.click('form[action="/portal/delete"] button');
      check('deleting says what happens and when', (await page.content()).includes('Your data will be deleted by'));
      await visit(page, 'deleted-en');
      check('after deleting, the gate denies', (await decision(service, 'cust-en', 'functional.service.improve')) === 'deny');
    }
    site.close();
    await context.close();

    // An Arabic-speaking customer's centre, from their own locale.
    if (!smoke) {
      await api('PUT', '/v1/subjects/cust-ar', service, { region: 'AE', locale: 'ar-AE' });
      const arLink = (await api('POST', '/v1/subjects/cust-ar/portal-sessions', service, {})).body.url;
      const ar = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'ar' });
      const arPage = await ar.newPage();
      await arPage.goto(arLink);
      check('the customer’s own language comes first', (await arPage.getAttribute('html', 'lang')) === 'ar');
      await arPage.goto(`${base}/portal/delete`);
      await visit(arPage, 'delete-confirm-ar');
      await arPage.click('form[action="/portal/sign-out"] button');
      await visit(arPage, 'signed-out-ar');
      await ar.close();
    }
  } finally {
    await browser.close();
  }
  const passed = checks.filter((c) => c.ok).length;
  console.log(`\n${passed}/${checks.length} checks passed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
