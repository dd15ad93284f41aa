// Part of tools/zotonic_smoke.sh: node zotonic_smoke_revdiff.js BASE_URL RSC_ID OUT_PNG
// Logs in as admin/admin in headless Chromium, opens /admin/backup/RSC_ID, picks the oldest
// version as "a" (b = the page now) and prints the diff shown; then picks that version as "b"
// too (one version alone) and says whether the revert button shows. Prints failed requests.
const { chromium } = require('playwright-core');

(async () => {
  const [base, id, png] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--ignore-certificate-errors', '--ssl-version-max=tls1.2',
           '--host-resolver-rules=MAP localhost 127.0.0.1', '--disable-gpu', '--disable-quic',
           '--no-first-run', '--disable-background-networking', '--disable-component-update',
           '--disable-sync'],
  });
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  const errors = [];
  page.on('response', r => { if (r.status() >= 400) errors.push(r.status() + ' ' + r.url()); });
  await page.goto(base + '/');
  await page.evaluate(async () => {
    await fetch('/zotonic-auth', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ cmd: 'logon', username: 'admin', password: 'admin' }),
    });
  });
  await page.goto(base + '/admin/backup/' + id);
  await page.waitForSelector('#revisions input[name="a"]');
  const as = await page.$$('#revisions input[name="a"]');
  await as[as.length - 1].check();
  await page.waitForFunction(() => /Changes since/.test(document.querySelector('#page-diff').innerHTML),
                             null, { timeout: 20000 }).catch(() => null);
  const diff = await page.$eval('#page-diff', e => e.innerHTML).catch(() => '');
  console.log('DIFF: ' + diff.replace(/\s+/g, ' ').slice(0, 2000));
  const bs = await page.$$('#revisions input[name="b"]');
  await bs[bs.length - 1].check();
  const revert = await page.waitForSelector('#page-diff .btn-danger', { timeout: 20000 }).then(() => 'yes', () => 'no');
  console.log('REVERT: ' + revert);
  console.log('ERRORS: ' + JSON.stringify(errors));
  await page.screenshot({ path: png, fullPage: true });
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
