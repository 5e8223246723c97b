// Guards' phones trust the box (cloud-protocol §7.7), end to end: a real
// `secbox run` paired with the cloud simulator, which gives it a name under
// a zone and answers its CSR with a certificate from a real ACME server
// (Debian's pebble, DNS-01 through pebble-challtestsrv). A phone that trusts
// pebble's root as it trusts a public CA (NSS, certutil -t C,,), with no
// ignoreHTTPSErrors, opens https://127-0-0-1.<name>:<port>/: no certificate
// error, the service worker active, no installability errors; with the box
// stopped the app reopens from its cache and keeps a note, which reaches the
// cloud once the box is back. The bare address keeps the self-signed
// certificate, and the app opened there offers the named address.
//   SECBOX_BINARY=… CLOUDSIM_BINARY=… SECBOX_WEB_DIR=… node --test tests/web/lan_cert.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { collect, launchPhone, waitFor, stopChildren, pinHash, snapshot, freePort, cloudEvents } from './support.mjs';

const root = mkdtempSync(join(tmpdir(), 'secbox-lancert-'));
chmodSync(root, 0o711);
const shots = process.env.SECBOX_SCREENSHOTS || join(root, 'screenshots');
mkdirSync(shots, { recursive: true });
const children = [];
after(async () => {
  await stopChildren(children);
  if (!process.env.SECBOX_SCREENSHOTS) rmSync(root, { recursive: true, force: true });
});

// The issuer of the certificate the LAN port presents for `servername` (none: the bare address).
function presentedIssuer(port, servername) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const issuer = s.getPeerCertificate().issuer?.CN ?? '';
      s.destroy();
      resolve(issuer);
    });
    s.on('error', reject);
  });
}

test('a named box serves a trusted certificate: the app installs, and opens and keeps notes without the box',
     { timeout: 240_000 }, async () => {
  writeFileSync(join(root, 'script.jsonl'), [
    snapshot('community', [{ id: 'com_1', name: 'Los Pinos', timezone: 'UTC' }]),
    snapshot('user', [{ id: 'g_1', communityId: 'com_1', role: 'guard', displayName: 'Juan Pérez', pinHash: pinHash('2468') }]),
    snapshot('banned_visitor', [{ id: 'b_1', communityId: 'com_1', fullName: 'José Núñez', plate: 'ABC-123',
                                  reason: 'Robo de paquetes', createdAt: '2026-10-01T12:00:00Z' }]),
  ].join('\n') + '\n');
  mkdirSync(join(root, 'sim'), { mode: 0o700 });
  const bootstrap = 'bt_lancert_test_0123456789';
  const sim = collect(spawn(process.env.CLOUDSIM_BINARY, ['--dir', join(root, 'sim'), '--device', 'dev_lancert', '--bootstrap',
                                                          bootstrap, '--script', join(root, 'script.jsonl'),
                                                          '--lan-zone', 'box.secbox.test'],
                            { stdio: ['pipe', 'pipe', 'pipe'] }));
  children.push(sim);
  const ready = JSON.parse((await waitFor(() => sim.text.match(/^\{.*\}$/m), 30_000, 'the simulator'))[0]);
  assert.ok(ready.lanRoots, `the simulator runs no ACME server (is pebble installed?):\n${sim.text}`);

  const lanPort = await freePort();
  mkdirSync(join(root, 'etc'), { mode: 0o750 });
  mkdirSync(join(root, 'state'), { mode: 0o700 });
  writeFileSync(join(root, 'etc/secbox.env'),
                `CLOUD_CA_FILE=${ready.caFile}\nPAIRING_PORT=0\nLAN_PORT=${lanPort}\n` +
                `LAN_WEB_DIR=${process.env.SECBOX_WEB_DIR}\nLAN_CERT_ROOTS_FILE=${ready.lanRoots}\n` +
                // The booth's WiFi address the box gives guards (the name maps it to loopback here).
                'LAN_ADDRESSES=192.168.77.7\n', { mode: 0o600 });
  writeFileSync(join(root, 'etc/cloud'), `${ready.baseUrl}\n`);
  const startBox = () => {
    const child = collect(spawn(process.env.SECBOX_BINARY, ['run'], {
      env: { PATH: process.env.PATH, SECBOX_ETC_DIR: join(root, 'etc'), SECBOX_STATE_DIR: join(root, 'state') },
      stdio: ['ignore', 'pipe', 'pipe'] }));
    children.push(child);
    return child;
  };
  let box = startBox();
  const pairingPort = Number((await waitFor(() => box.text.match(/Pairing form ready\.","port":(\d+)/), 30_000, 'the pairing form'))[1]);
  await waitFor(() => box.text.includes('LAN server ready.'), 60_000, 'the LAN server');
  const paired = await fetch(`http://127.0.0.1:${pairingPort}/pair`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ v: 1, cloudBaseUrl: ready.baseUrl, gatewayUrl: ready.gatewayUrl, deviceId: 'dev_lancert', bootstrapToken: bootstrap }) });
  assert.equal(paired.status, 200);

  // From welcome to the trusted certificate being served.
  await waitFor(() => box.text.includes('The cloud welcomed the box.'), 30_000, 'the welcome');
  const welcomed = Date.now();
  const name = (await waitFor(() => box.text.match(/The cloud gave the box a LAN name\.","name":"([^"]+)"/), 10_000, 'the name'))[1];
  await waitFor(() => box.text.includes('Serving the LAN certificate the cloud installed.'), 150_000, `the certificate:\n${box.text}\n${sim.text}`);
  console.log(`welcome to trusted certificate served: ${((Date.now() - welcomed) / 1000).toFixed(1)} s`);
  assert.match(name, /^[0-9a-f]{8}\.box\.secbox\.test$/);
  const host = `127-0-0-1.${name}`;
  assert.match(await presentedIssuer(lanPort, host), /Pebble/i, 'the named certificate for its name');
  assert.doesNotMatch(await presentedIssuer(lanPort, undefined), /Pebble/i, 'the bare address keeps the self-signed one');

  const context = await launchPhone(join(root, 'phone'), ready.lanRoots, `*.${name}`, { ca: true });
  try {
    const page = context.pages()[0] || await context.newPage();
    await page.setViewportSize({ width: 360, height: 740 });
    const res = await page.goto(`https://${host}:${lanPort}/`, { waitUntil: 'load' });  // a certificate error throws
    assert.equal(res.status(), 200);
    await waitFor(() => page.evaluate(() => navigator.serviceWorker.ready.then(() => true)), 15_000, 'the service worker');
    await page.reload({ waitUntil: 'load' });
    await waitFor(() => page.evaluate(() => !!navigator.serviceWorker.controller), 10_000, 'the worker to control the page');
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors, [], 'the app can be installed');
    await page.waitForSelector('#guard-buttons .guard');
    await page.screenshot({ path: join(shots, 'lancert-sign-in-360.png') });
    await page.setViewportSize({ width: 412, height: 840 });
    await page.screenshot({ path: join(shots, 'lancert-sign-in-412.png') });

    await page.click('#guard-buttons [data-guard-id="g_1"]');  // a guard taps their name
    await page.fill('#pin', '2468');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#view-app:not([hidden])');
    await page.screenshot({ path: join(shots, 'lancert-home-412.png') });
    await page.setViewportSize({ width: 360, height: 740 });
    await page.screenshot({ path: join(shots, 'lancert-home-360.png') });

    // The box stops (a reboot, the WiFi gone): the app reopens from its cache.
    await new Promise((resolve) => { box.once('exit', resolve); box.kill('SIGTERM'); });
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('#view-app:not([hidden])');
    await page.click('[data-tab=note]');
    await page.fill('#note-text', 'Portón norte sin luz');
    await page.click('#note-form button[type=submit]');
    await waitFor(async () => (await page.getAttribute('#status-queue', 'data-local')) === '1', 10_000, 'the note kept on the phone');
    assert.match(await page.textContent('#ban-age'), /^Ban list: (just now|\d+ min ago)$/, 'the lists\' age, as the box last said');
    assert.equal(await page.textContent('#guest-age'), 'Guest list: no data yet');
    await page.screenshot({ path: join(shots, 'lancert-offline-360.png') });
    await page.setViewportSize({ width: 412, height: 840 });
    await page.screenshot({ path: join(shots, 'lancert-offline-412.png') });

    // The box is back with its certificate (read from disk): the note goes up, once.
    box = startBox();
    await waitFor(() => box.text.includes('LAN server ready.'), 60_000, 'the LAN server again');
    await waitFor(async () => (await page.getAttribute('#status-queue', 'data-local')) === '0', 60_000, 'the outbox to empty');
    const notes = await waitFor(async () => {
      const e = await cloudEvents(sim);
      return e && Object.keys(e.byType.guard_note ?? {}).length >= 1 ? e.byType.guard_note : null;
    }, 60_000, 'the note at the cloud');
    assert.equal(Object.keys(notes).length, 1);
    assert.equal(Object.values(notes)[0].text, 'Portón norte sin luz');
    assert.match(await presentedIssuer(lanPort, host), /Pebble/i, 'served again after the restart');
  } finally {
    await context.close();
  }

  // Opened at the bare address (its self-signed certificate trusted by hand,
  // as a technician would), the app offers the named address, which this
  // phone resolves and trusts.
  execFileSync('certutil', ['-d', `sql:${join(root, 'phone/home/.pki/nssdb')}`, '-A', '-t', 'P,,', '-n', 'the-box',
                            '-i', join(root, 'state/lan/cert.pem')]);
  const again = await launchPhone(join(root, 'phone'), ready.lanRoots, `*.${name}`, { ca: true });
  try {
    const page = again.pages()[0] || await again.newPage();
    await page.setViewportSize({ width: 360, height: 740 });
    const res = await page.goto(`https://127.0.0.1:${lanPort}/`, { waitUntil: 'load' });
    assert.match(res.headers()['content-security-policy'], new RegExp(`connect-src 'self' https://\\*\\.${name.replace(/\./g, '\\.')}:${lanPort};`));
    // The app shows one of its two views once its outbox is open: wait for it
    // rather than read the page at 'load' (a busy machine is slower there).
    await page.waitForSelector('#view-login:not([hidden]), #view-app:not([hidden])');
    if (await page.isVisible('#view-login')) {
      await page.click('#guard-buttons [data-guard-id="g_1"]');
      await page.fill('#pin', '2468');
      await page.click('#login-form button[type=submit]');
    }
    await page.waitForSelector('#named-offer:not([hidden])', { timeout: 20_000 });
    assert.equal(await page.getAttribute('#named-link', 'href'), `https://192-168-77-7.${name}:${lanPort}/`);
    await page.screenshot({ path: join(shots, 'lancert-offer-360.png') });
  } finally {
    await again.close();
  }
});
