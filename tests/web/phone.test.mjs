// The guard app on a phone that trusts the box (tests/web/support.mjs
// launchPhone: an NSS store trusting the box's certificate, the box opened by
// name, no ignoreHTTPSErrors), against a real `secbox run` paired with the
// cloud simulator: the page comes with its Content-Security-Policy and breaks
// none of it; the service worker registers and keeps the ban list for when
// the box cannot answer; signing out leaves nothing of the community's lists
// in the phone's caches; a ban's photo is shown from the box, not from the
// address the cloud wrote.
//   SECBOX_BINARY=… CLOUDSIM_BINARY=… SECBOX_WEB_DIR=… node --test tests/web/phone.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, launchPhone, waitFor, stopChildren, iso, pinHash, snapshot } from './support.mjs';

const root = mkdtempSync(join(tmpdir(), 'secbox-phone-'));
chmodSync(root, 0o711);
const shots = process.env.SECBOX_SCREENSHOTS || join(root, 'screenshots');
mkdirSync(shots, { recursive: true });
const children = [];
after(async () => {
  await stopChildren(children);
  if (!process.env.SECBOX_SCREENSHOTS) rmSync(root, { recursive: true, force: true });
});

const output = (child, re) => child.text.match(re);

test('on a phone that trusts the box: a strict CSP, an offline copy, and nothing left after sign-out',
     { timeout: 180_000 }, async () => {
  // A ban photo the cloud stores (a real PNG), named by the cloud's URL: the
  // phone must see it, though its policy allows no image from elsewhere.
  execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=96x96', '-frames:v', '1',
                          join(root, 'b_1.png')]);
  writeFileSync(join(root, 'script.jsonl'), [
    snapshot('user', [{ id: 'g_1', communityId: 'com_1', role: 'guard', displayName: 'Juan Pérez', pinHash: pinHash('2468') }]),
    snapshot('banned_visitor', [{ id: 'b_1', communityId: 'com_1', fullName: 'José Núñez', plate: 'ABC-123',
                                  photoUrl: '${BASE_URL}/files/b_1.png',
                                  reason: 'Robo de paquetes', createdAt: '2026-10-01T12:00:00Z' }]),
  ].join('\n') + '\n');
  mkdirSync(join(root, 'sim'), { mode: 0o700 });
  const bootstrap = 'bt_phone_test_0123456789';
  const sim = collect(spawn(process.env.CLOUDSIM_BINARY, ['--dir', join(root, 'sim'), '--device', 'dev_phone', '--bootstrap',
                                                          bootstrap, '--script', join(root, 'script.jsonl'),
                                                          '--publish', `b_1.png=${join(root, 'b_1.png')}`],
                            { stdio: ['pipe', 'pipe', 'pipe'] }));
  children.push(sim);
  const ready = JSON.parse((await waitFor(() => output(sim, /^\{.*\}$/m), 20_000, 'the simulator'))[0]);
  mkdirSync(join(root, 'etc'), { mode: 0o750 });
  mkdirSync(join(root, 'state'), { mode: 0o700 });
  writeFileSync(join(root, 'etc/secbox.env'),
                `CLOUD_CA_FILE=${ready.caFile}\nPAIRING_PORT=0\nLAN_PORT=0\nLAN_WEB_DIR=${process.env.SECBOX_WEB_DIR}\n`, { mode: 0o600 });
  writeFileSync(join(root, 'etc/cloud'), `${ready.baseUrl}\n`);
  const box = collect(spawn(process.env.SECBOX_BINARY, ['run'], {
    env: { PATH: process.env.PATH, SECBOX_ETC_DIR: join(root, 'etc'), SECBOX_STATE_DIR: join(root, 'state') },
    stdio: ['ignore', 'pipe', 'pipe'] }));
  children.push(box);
  const pairingPort = Number((await waitFor(() => output(box, /Pairing form ready\.","port":(\d+)/), 30_000, 'the pairing form'))[1]);
  const lanPort = Number((await waitFor(() => output(box, /LAN server ready\.","port":(\d+)/), 60_000, 'the LAN server'))[1]);
  const paired = await fetch(`http://127.0.0.1:${pairingPort}/pair`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ v: 1, cloudBaseUrl: ready.baseUrl, gatewayUrl: ready.gatewayUrl, deviceId: 'dev_phone', bootstrapToken: bootstrap }) });
  assert.equal(paired.status, 200);
  await waitFor(() => (box.text.match(/Applied a snapshot/g) || []).length >= 2, 30_000, 'the snapshots');

  const context = await launchPhone(join(root, 'phone'), join(root, 'state/lan/cert.pem'));
  try {
    const page = context.pages()[0] || await context.newPage();
    const violations = [];
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
    const res = await page.goto(`https://secbox.local:${lanPort}/`, { waitUntil: 'load' });
    const csp = res.headers()['content-security-policy'] || '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/, 'no inline or foreign script');
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers()['x-content-type-options'], 'nosniff');
    // The worker registers (the certificate is trusted) and takes the page.
    await waitFor(() => page.evaluate(() => navigator.serviceWorker.ready.then(() => true)), 15_000, 'the service worker');
    await page.reload({ waitUntil: 'load' });
    await waitFor(() => page.evaluate(() => !!navigator.serviceWorker.controller), 10_000, 'the worker to control the page');

    await page.click('#guard-buttons [data-guard-id="g_1"]');  // a guard taps their name
    await page.fill('#pin', '2468');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#view-app:not([hidden])');
    const cachedLists = () => page.evaluate(async () => {
      const out = [];
      for (const name of await caches.keys()) {
        if (!name.startsWith('secbox-data-')) continue;
        for (const r of await (await caches.open(name)).keys()) out.push(new URL(r.url).pathname);
      }
      return out;
    });
    await waitFor(async () => (await cachedLists()).includes('/api/lan/ban-list'), 15_000, 'the ban list in the worker\'s cache');
    // The ban's photo, through the box: an object URL of the box's answer.
    await page.fill('#search', 'ABC-123');
    const photo = await waitFor(() => page.evaluate(() => {
      const img = document.querySelector('#ban-results li.ban img');
      return img && img.complete && img.naturalWidth > 0 ? { src: img.src, width: img.naturalWidth } : null;
    }), 15_000, 'the ban photo');
    assert.match(photo.src, /^blob:https:\/\/secbox\.local:/);
    assert.equal(photo.width, 96);
    await page.screenshot({ path: join(shots, 'phone-ban-photo.png') });
    await page.screenshot({ path: join(shots, 'phone-signed-in.png') });

    await page.click('#logout');
    await page.waitForSelector('#view-login:not([hidden])');
    await waitFor(async () => (await cachedLists()).length === 0, 5_000, 'the community\'s lists to leave the caches');
    assert.ok((await page.evaluate(() => caches.keys())).some((n) => n.startsWith('secbox-shell-')), 'the app shell stays');
    await page.screenshot({ path: join(shots, 'phone-signed-out.png') });
    assert.deepEqual(violations, [], 'the app breaks none of its policy');
  } finally {
    await context.close();
  }
});
