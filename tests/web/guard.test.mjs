// The guard app in headless Chromium against a real `secbox run` paired with
// the cloud simulator, which plays a small community (a guard with a PIN,
// bans, a guest expected today): log in, search the ban list, let the guest
// in, lose the box (context.setOffline), record a walk-in, come back, and the
// cloud receives exactly two entries. Screenshots of each screen.
//   SECBOX_BINARY=… CLOUDSIM_BINARY=… SECBOX_WEB_DIR=… node --test tests/web/guard.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, launchChromium, waitFor, stopChildren, gotoPage, iso, pinHash, snapshot } from './support.mjs';

const root = mkdtempSync(join(tmpdir(), 'secbox-guard-'));
chmodSync(root, 0o711);
const shots = process.env.SECBOX_SCREENSHOTS || join(root, 'screenshots');
mkdirSync(shots, { recursive: true });
const children = [];
after(async () => {
  await stopChildren(children);
  if (!process.env.SECBOX_SCREENSHOTS) rmSync(root, { recursive: true, force: true });
});

const output = (child, re) => child.text.match(re);


test('a guard works the gate, offline too, and nothing is sent twice', { timeout: 180_000 }, async () => {
  const now = Date.now();
  const script = [
    snapshot('community', [{ id: 'com_1', name: 'Los Pinos', timezone: Intl.DateTimeFormat().resolvedOptions().timeZone }]),
    snapshot('unit', [{ id: 'u_12', communityId: 'com_1', label: 'Casa 12' }]),
    snapshot('user', [{ id: 'g_1', communityId: 'com_1', role: 'guard', displayName: 'Juan Pérez', pinHash: pinHash('2468') }]),
    snapshot('guest_authorization', [{ id: 'ga_1', communityId: 'com_1', unitId: 'u_12', guestName: 'Lucía Fernández',
                                       plate: 'JKL-456', validFrom: iso(now - 3600e3), validUntil: iso(now + 6 * 3600e3),
                                       status: 'active' }]),
    snapshot('banned_visitor', [
      { id: 'b_1', communityId: 'com_1', fullName: 'José Núñez', plate: 'ABC-123', reason: 'Robo de paquetes',
        createdAt: '2026-10-01T12:00:00Z' },
      { id: 'b_2', communityId: 'com_1', fullName: 'Luis Soto', reason: 'Agresión a un guardia', createdAt: '2026-10-02T12:00:00Z' },
    ]),
  ].join('\n');
  writeFileSync(join(root, 'script.jsonl'), script + '\n');
  mkdirSync(join(root, 'sim'), { mode: 0o700 });
  const bootstrap = 'bt_guard_test_0123456789';
  const sim = collect(spawn(process.env.CLOUDSIM_BINARY, ['--dir', join(root, 'sim'), '--device', 'dev_gate', '--bootstrap',
                                                          bootstrap, '--script', join(root, 'script.jsonl')],
                            { stdio: ['pipe', 'pipe', 'pipe'] }));
  children.push(sim);
  const ready = JSON.parse((await waitFor(() => output(sim, /^\{.*\}$/m), 20_000, 'the simulator'))[0]);

  mkdirSync(join(root, 'etc'), { mode: 0o750 });
  mkdirSync(join(root, 'state'), { mode: 0o700 });
  writeFileSync(join(root, 'etc/secbox.env'),
                `CLOUD_CA_FILE=${ready.caFile}\nPAIRING_PORT=0\nLAN_PORT=0\nLAN_WEB_DIR=${process.env.SECBOX_WEB_DIR}\n`, { mode: 0o600 });
  writeFileSync(join(root, 'etc/cloud'), `${ready.baseUrl}\n`);  // install.sh --cloud
  const box = collect(spawn(process.env.SECBOX_BINARY, ['run'], {
    env: { PATH: process.env.PATH, SECBOX_ETC_DIR: join(root, 'etc'), SECBOX_STATE_DIR: join(root, 'state') },
    stdio: ['ignore', 'pipe', 'pipe'] }));
  children.push(box);
  const pairingPort = Number((await waitFor(() => output(box, /Pairing form ready\.","port":(\d+)/), 30_000, 'the pairing form'))[1]);
  const lanPort = Number((await waitFor(() => output(box, /LAN server ready\.","port":(\d+)/), 60_000, 'the LAN server'))[1]);
  const paired = await fetch(`http://127.0.0.1:${pairingPort}/pair`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ v: 1, cloudBaseUrl: ready.baseUrl, gatewayUrl: ready.gatewayUrl, deviceId: 'dev_gate', bootstrapToken: bootstrap }) });
  assert.equal(paired.status, 200);
  await waitFor(() => (box.text.match(/Applied a snapshot/g) || []).length >= 5, 30_000, 'the five snapshots');

  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, locale: 'es-MX' });
    const page = await context.newPage();
    await gotoPage(page, `https://localhost:${lanPort}/`);
    await page.waitForSelector('#view-login:not([hidden])');
    // The guards who can sign in, each a button; an ID can still be typed.
    await page.waitForSelector('#guard-buttons .guard');
    assert.deepEqual(await page.locator('#guard-buttons .guard').allTextContents(), ['Juan Pérez']);
    assert.equal(await page.isHidden('#guard-id'), true, 'no ID to type while the names are there');
    await page.screenshot({ path: join(shots, 'guard-login.png') });

    await page.fill('#pin', '2468');  // a PIN, but no name tapped
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.equal(await page.textContent('#login-error'), 'Toca tu nombre o escribe tu ID.');
    await page.click('#guard-type');
    await page.fill('#guard-id', 'g_1');
    await page.fill('#pin', '0000');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.equal(await page.textContent('#login-error'), 'Guardia o PIN incorrecto.');
    await page.click('#guard-buttons [data-guard-id="g_1"]');  // or tap the name
    assert.equal(await page.inputValue('#guard-id'), 'g_1');
    await page.fill('#pin', '2468');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#view-app:not([hidden])');
    // Nothing wider than a phone: at 360 and 412 px the page never scrolls
    // sideways (the fourth tab, Cámaras, once pushed it out).
    for (const width of [360, 412]) {
      await page.setViewportSize({ width, height: 800 });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `at ${width} px the page is ${overflow} px wider than the screen`);
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await waitFor(async () => (await page.textContent('#status-cloud')) === 'Nube: conectada', 15_000, 'the status bar');

    // The ban list: by plate however it is typed, by name without accents.
    await page.fill('#search', 'abc 123');
    assert.equal(await page.textContent('#check-verdict'), 'PROHIBIDO: no dejar pasar');
    assert.equal(await page.locator('#ban-results li').count(), 1);
    await page.screenshot({ path: join(shots, 'guard-ban-hit.png') });
    await page.fill('#search', 'jose nunez');
    assert.equal(await page.locator('#ban-results .name').textContent(), 'José Núñez');
    await page.fill('#search', 'XYZ-999');
    assert.equal(await page.textContent('#check-verdict'), '✓ Sin prohibición');

    // Today's guest, let in with one tap.
    await page.click('[data-tab=guests]');
    await page.waitForSelector('#guest-list .allow');
    assert.match(await page.textContent('#guest-list'), /Lucía Fernández.*Casa 12/);
    await page.screenshot({ path: join(shots, 'guard-guests.png') });
    await page.click('#guest-list .allow');
    await waitFor(async () => (await page.textContent('#toast')) === 'Entrada registrada.', 10_000, 'the entry');

    // The box goes away; a walk-in is kept on the phone.
    await context.setOffline(true);
    await page.fill('#walkin-name', 'Pedro Ramírez');
    await page.fill('#walkin-plate', 'MNO-321');
    await page.click('#walkin-form .allow');
    await waitFor(async () => (await page.textContent('#toast')).startsWith('Guardada en este equipo'), 10_000, 'the offline save');
    await waitFor(async () => (await page.getAttribute('#status-queue', 'data-local')) === '1', 10_000, 'the local count');
    assert.equal(await page.textContent('#status-cloud'), 'Sin conexión con la caseta');
    await page.screenshot({ path: join(shots, 'guard-offline.png') });

    // Back: the walk-in goes up, once.
    await context.setOffline(false);
    await waitFor(async () => (await page.getAttribute('#status-queue', 'data-local')) === '0', 30_000, 'the outbox to empty');
    const events = await waitFor(async () => {
      const before = sim.text.length;
      sim.stdin.write('events\n');
      await new Promise((r) => setTimeout(r, 300));
      const line = sim.text.slice(before).split('\n').find((l) => l.startsWith('{"byType"'));
      const parsed = line && JSON.parse(line);
      return parsed && Object.keys(parsed.byType.visitor_entry ?? {}).length >= 2 ? parsed : null;
    }, 60_000, 'two visitor entries at the cloud');
    const entries = Object.values(events.byType.visitor_entry);
    assert.equal(entries.length, 2);
    assert.deepEqual(entries.map((e) => e.name).sort(), ['Lucía Fernández', 'Pedro Ramírez']);
    assert.ok(entries.every((e) => e.guardId === 'g_1' && e.decision === 'allowed'));

    // English, for the screenshot and the strings.
    await page.click('#lang');
    await page.click('[data-tab=check]');
    await page.fill('#search', 'ABC-123');
    assert.equal(await page.textContent('#check-verdict'), 'BANNED: do not let in');
    await page.screenshot({ path: join(shots, 'guard-english.png') });
  } finally {
    await browser.close();
    console.log(`screenshots in ${shots}`);
  }
});
