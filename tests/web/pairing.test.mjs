// The pairing form in headless Chromium: a fresh `secbox run` (embedded
// database) and the cloud simulator on 127.0.0.1; the page is filled in as a
// super-admin would, with a bad QR first, a QR for another cloud, then the
// right one; and a page on another site that posts to the form is refused.
//   SECBOX_BINARY=… CLOUDSIM_BINARY=… node --test tests/web/pairing.test.mjs
// Screenshots go to $SECBOX_SCREENSHOTS (default: a temp dir, printed).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { collect, launchChromium, waitForOutput, stopChildren, gotoPage } from './support.mjs';

const secbox = process.env.SECBOX_BINARY;
const cloudsim = process.env.CLOUDSIM_BINARY;
const root = mkdtempSync(join(tmpdir(), 'secbox-web-'));
chmodSync(root, 0o711);  // the embedded cluster's user must reach state/
const shots = process.env.SECBOX_SCREENSHOTS || join(root, 'screenshots');
mkdirSync(shots, { recursive: true });
const children = [];

after(async () => {
  await stopChildren(children);
  if (!process.env.SECBOX_SCREENSHOTS) rmSync(root, { recursive: true, force: true });
});

test('a super-admin pairs the box through the form', { timeout: 120_000 }, async () => {
  assert.ok(secbox && cloudsim, 'SECBOX_BINARY and CLOUDSIM_BINARY must be set');
  const bootstrap = 'bt_browser_test_0123456789';
  mkdirSync(join(root, 'sim'), { mode: 0o700 });
  const sim = collect(spawn(cloudsim, ['--dir', join(root, 'sim'), '--device', 'dev_web', '--bootstrap', bootstrap],
                    { stdio: ['pipe', 'pipe', 'pipe'] }));
  children.push(sim);
  const ready = JSON.parse((await waitForOutput(sim, /^\{.*\}$/m, 20_000))[0]);

  mkdirSync(join(root, 'etc'), { mode: 0o750 });
  mkdirSync(join(root, 'state'), { mode: 0o700 });
  writeFileSync(join(root, 'etc/secbox.env'), `CLOUD_CA_FILE=${join(root, 'sim/ca.pem')}\nPAIRING_PORT=0\nLAN_PORT=0\n`,
                { mode: 0o600 });
  writeFileSync(join(root, 'etc/cloud'), `# install.sh --cloud\n${ready.baseUrl}\n`);  // the cloud it was installed for
  const box = collect(spawn(secbox, ['run'], {
    env: { PATH: process.env.PATH, SECBOX_ETC_DIR: join(root, 'etc'), SECBOX_STATE_DIR: join(root, 'state') },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  children.push(box);
  const port = Number((await waitForOutput(box, /Pairing form ready\.","port":(\d+)/, 30_000))[1]);
  const url = `http://127.0.0.1:${port}/`;
  const lanPort = Number((await waitForOutput(box, /LAN server ready\.","port":(\d+)/, 30_000))[1]);

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 412, height: 915 } });  // a guard's phone
    await gotoPage(page, url);
    assert.equal(await page.locator('h1').textContent(), 'Pair this SecBox');
    // The fingerprint is made off the loop; a reload shows it once made.
    await page.waitForTimeout(300);
    await page.reload();
    const fingerprint = await page.locator('#fingerprint').textContent();
    assert.match(fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    await page.screenshot({ path: join(shots, 'pairing-form.png'), fullPage: true });

    // A QR for another cloud scheme and a short token: each named beside the field.
    await page.fill('#qr', JSON.stringify({ v: 1, cloudBaseUrl: 'http://cloud.example.com', deviceId: 'dev_web',
                                           bootstrapToken: 'short', gatewayUrl: ready.gatewayUrl }));
    await page.click('button[type=submit]');
    const fields = await page.locator('#qr-errors li').evaluateAll((lis) => lis.map((li) => li.dataset.field));
    assert.deepEqual(fields, ['cloudBaseUrl', 'bootstrapToken']);
    assert.equal(await page.locator('#qr').getAttribute('aria-invalid'), 'true');
    await page.screenshot({ path: join(shots, 'pairing-errors.png'), fullPage: true });

    // The hijack: a well-formed QR for someone else's cloud.
    await page.fill('#qr', JSON.stringify({ v: 1, cloudBaseUrl: 'https://evil.example', deviceId: 'dev_web',
                                           bootstrapToken: bootstrap, gatewayUrl: 'wss://evil.example/ws' }));
    await page.click('button[type=submit]');
    const foreign = await page.locator('#qr-errors li').evaluateAll((lis) => lis.map((li) => li.dataset.field));
    assert.deepEqual(foreign, ['cloudBaseUrl', 'gatewayUrl']);
    assert.match(await page.locator('#qr-errors').textContent(), new RegExp(`installed for \\(${ready.baseUrl}\\)`));
    await page.screenshot({ path: join(shots, 'pairing-foreign-cloud.png'), fullPage: true });

    // A page elsewhere (here: another origin on this machine) that a phone
    // opens posts the right QR to the box: refused, nothing claimed.
    const evil = createServer((req, res) => {
      res.setHeader('Content-Type', 'text/html');
      res.end(`<form id=f method=post action="${url}pair"><input name=qr value='${JSON.stringify({
        v: 1, cloudBaseUrl: ready.baseUrl, deviceId: 'dev_web', bootstrapToken: bootstrap, gatewayUrl: ready.gatewayUrl,
      })}'></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise((resolve) => evil.listen(0, 'localhost', resolve));
    try {
      const attacker = await browser.newPage();
      const posted = attacker.waitForResponse((r) => r.url() === `${url}pair`);
      await gotoPage(attacker, `http://localhost:${evil.address().port}/`);
      const refused = await posted;
      assert.equal(refused.status(), 403);
      assert.match(await refused.text(), /cross_site/);
      await attacker.close();
    } finally {
      evil.close();
    }

    // The right one.
    await page.fill('#qr', JSON.stringify({ v: 1, cloudBaseUrl: ready.baseUrl, deviceId: 'dev_web',
                                           bootstrapToken: bootstrap, gatewayUrl: ready.gatewayUrl,
                                           communityId: 'com_1' }));
    await page.click('button[type=submit]');
    assert.equal(await page.locator('h1').textContent(), 'Paired');
    await page.screenshot({ path: join(shots, 'pairing-paired.png'), fullPage: true });
    await waitForOutput(box, /The cloud welcomed the box\./, 30_000);
    assert.match(readFileSync(join(root, 'etc/secbox.env'), 'utf8'), /^DEVICE_ID=dev_web$/m);

    const lanLinks = await page.locator('a').evaluateAll((as) => as.map((a) => a.href));
    assert.ok(lanLinks.every((l) => l.endsWith(`:${lanPort}/`)), lanLinks.join(' '));

    const gone = await gotoPage(page, url);
    assert.equal(gone.status(), 410);
    assert.equal(await page.locator('h1').textContent(), 'This box is paired');

    // The LAN side answers over HTTPS with the box's own certificate.
    const lan = await browser.newContext({ ignoreHTTPSErrors: true });
    const lanPage = await lan.newPage();
    const health = await gotoPage(lanPage, `https://127.0.0.1:${lanPort}/healthz`);
    assert.equal(health.status(), 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const status = await gotoPage(lanPage, `https://127.0.0.1:${lanPort}/api/lan/status`);
    assert.equal(status.status(), 401);
    await lan.close();
  } finally {
    await browser.close();
    console.log(`screenshots in ${shots}`);
  }
});
