// Camera ban alarms end to end in headless Chromium: a real `secbox run`
// paired with the cloud simulator and pointed at a fake Frigate 0.16 (real
// HTTP). A guard is signed in; Frigate reports a car whose plate LPR first
// reads wrong and then refines to a banned one; the alarm takes the screen
// (the time from Frigate having the plate to the alarm on screen is printed);
// the guard turns the car away; the cloud gets one ban_hit and one
// visitor_entry. Then the same with the internet gone (the simulator down):
// alarm, "let in anyway" with a reason, and both events reach the cloud once
// it is back, once each; a second phone opened after the alarm was raised
// catches up with it, and sees it go when the first answers. Screenshots of
// the alarm at 360 and 412 px. Last, the box restarts while an alarm is on
// screen: the phone keeps it, and the guard's answer reaches the cloud as an
// entry though the box forgot the alarm.
//   SECBOX_BINARY=… CLOUDSIM_BINARY=… SECBOX_WEB_DIR=… node --test tests/web/alarms.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, launchChromium, waitFor, stopChildren, gotoPage, iso, pinHash, snapshot, freePort, cloudEvents } from './support.mjs';
import { startFakeFrigate, frigateCar } from './fake_frigate.mjs';

const root = mkdtempSync(join(tmpdir(), 'secbox-alarms-'));
chmodSync(root, 0o711);
const shots = process.env.SECBOX_SCREENSHOTS || join(root, 'screenshots');
mkdirSync(shots, { recursive: true });
const children = [];
let frigate;
after(async () => {
  await stopChildren(children);
  await frigate?.close();
  if (!process.env.SECBOX_SCREENSHOTS) rmSync(root, { recursive: true, force: true });
});

test('a banned plate seen by a camera alarms the guard, online and offline, once each', { timeout: 200_000 }, async () => {
  // A real JPEG for the camera's snapshot: one frame of ffmpeg's test pattern.
  execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=640x480:rate=1', '-frames:v', '1',
                          join(root, 'gate.jpg')]);
  frigate = await startFakeFrigate(readFileSync(join(root, 'gate.jpg')));

  const script = [
    snapshot('community', [{ id: 'com_1', name: 'Los Pinos', timezone: 'UTC' }]),
    snapshot('user', [{ id: 'g_1', communityId: 'com_1', role: 'guard', displayName: 'Juan Pérez', pinHash: pinHash('2468') }]),
    snapshot('banned_visitor', [
      { id: 'b_1', communityId: 'com_1', fullName: 'José Núñez', plate: 'ABC-123', reason: 'Robo de paquetes',
        createdAt: '2026-10-01T12:00:00Z' },
      { id: 'b_2', communityId: 'com_1', fullName: 'Marta Ríos', plate: 'OXY-780', reason: 'Amenazas al personal',
        createdAt: '2026-10-02T12:00:00Z' },
    ]),
  ].join('\n');
  writeFileSync(join(root, 'script.jsonl'), script + '\n');
  mkdirSync(join(root, 'sim'), { mode: 0o700 });
  const bootstrap = 'bt_alarm_test_0123456789';
  const sim = collect(spawn(process.env.CLOUDSIM_BINARY, ['--dir', join(root, 'sim'), '--device', 'dev_alarm', '--bootstrap',
                                                          bootstrap, '--script', join(root, 'script.jsonl')],
                            { stdio: ['pipe', 'pipe', 'pipe'] }));
  children.push(sim);
  const ready = JSON.parse((await waitFor(() => sim.text.match(/^\{.*\}$/m), 20_000, 'the simulator'))[0]);

  mkdirSync(join(root, 'etc'), { mode: 0o750 });
  mkdirSync(join(root, 'state'), { mode: 0o700 });
  writeFileSync(join(root, 'etc/secbox.env'),
                `CLOUD_CA_FILE=${ready.caFile}\nPAIRING_PORT=0\nLAN_PORT=${await freePort()}\n` +
                `LAN_WEB_DIR=${process.env.SECBOX_WEB_DIR}\nFRIGATE_URL=${frigate.url}\n`, { mode: 0o600 });
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
  const lanPort = Number((await waitFor(() => box.text.match(/LAN server ready\.","port":(\d+)/), 60_000, 'the LAN server'))[1]);
  const paired = await fetch(`http://127.0.0.1:${pairingPort}/pair`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ v: 1, cloudBaseUrl: ready.baseUrl, gatewayUrl: ready.gatewayUrl, deviceId: 'dev_alarm', bootstrapToken: bootstrap }) });
  assert.equal(paired.status, 200);
  await waitFor(() => (box.text.match(/Applied a snapshot/g) || []).length >= 3, 30_000, 'the three snapshots');
  await waitFor(() => box.text.includes("Frigate's events are reachable."), 30_000, 'the box reading Frigate');

  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 360, height: 800 }, locale: 'es-MX' });
    const page = await context.newPage();
    await gotoPage(page, `https://localhost:${lanPort}/`);
    await page.waitForSelector('#view-login:not([hidden])');
    await page.click('#guard-buttons [data-guard-id="g_1"]');  // a guard taps their name
    await page.fill('#pin', '2468');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#view-app:not([hidden])');
    await waitFor(async () => (await page.textContent('#status-cloud')) === 'Nube: conectada', 15_000, 'the status bar');
    await page.waitForTimeout(1500);  // the alarm stream is open

    // A car at the gate: LPR first reads a plate that is no one's, then refines it.
    const start = Date.now() / 1000;
    frigate.put(frigateCar({ id: `${start.toFixed(6)}-car1`, start, plate: 'A8C-12B', score: 0.74 }));
    await page.waitForTimeout(2500);
    assert.equal(await page.isHidden('#alarm'), true, 'a plate that is no ban raises nothing');
    const refined = Date.now();
    frigate.put(frigateCar({ id: `${start.toFixed(6)}-car1`, start, plate: 'ABC 123', score: 0.93 }));
    await page.waitForSelector('#alarm:not([hidden])', { timeout: 10_000 });
    const latency = Date.now() - refined;
    console.log(`camera alarm on screen ${latency} ms after Frigate had the plate (tunnel up)`);
    assert.equal(await page.textContent('#alarm-name'), 'José Núñez');
    assert.equal(await page.textContent('#alarm-reason'), 'Robo de paquetes');
    assert.match(await page.textContent('#alarm-read'), /ABC 123 · 93 % · cámara entrada/);
    await page.waitForFunction(() => document.querySelector('#alarm-snapshot').naturalWidth > 0, null, { timeout: 10_000 });
    for (const width of [360, 412]) {
      await page.setViewportSize({ width, height: 800 });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `at ${width} px the alarm is ${overflow} px wider than the screen`);
      await page.screenshot({ path: join(shots, `alarm-${width}.png`) });
    }
    // The same car keeps being reported (it is still moving): one alarm.
    for (let i = 0; i < 3; i++) {
      frigate.put(frigateCar({ id: `${start.toFixed(6)}-car1`, start, plate: 'ABC-123', score: 0.95 + i / 100 }));
      await page.waitForTimeout(400);
    }
    await page.click('#alarm-deny');
    await page.waitForSelector('#alarm', { state: 'hidden' });
    await waitFor(async () => (await page.textContent('#toast')) === 'Alerta atendida.', 10_000, 'the answer');
    const online = await waitFor(async () => {
      const e = await cloudEvents(sim);
      return e && Object.keys(e.byType.ban_hit ?? {}).length >= 1 && Object.keys(e.byType.visitor_entry ?? {}).length >= 1 ? e : null;
    }, 30_000, 'the ban_hit and the visitor_entry at the cloud');
    await page.waitForTimeout(2000);  // anything more would have arrived by now
    const settled = await cloudEvents(sim);
    assert.equal(Object.keys(settled.byType.ban_hit).length, 1, 'one ban_hit for the car');
    assert.equal(Object.keys(settled.byType.visitor_entry).length, 1);
    const hit = Object.values(online.byType.ban_hit)[0];
    assert.equal(hit.source, 'camera');
    assert.equal(hit.bannedVisitorId, 'b_1');
    assert.equal(hit.camera, 'entrada');
    assert.equal(hit.read, 'ABC 123');
    assert.equal(hit.frigateEventId, `${start.toFixed(6)}-car1`);
    const entry = Object.values(online.byType.visitor_entry)[0];
    assert.deepEqual({ decision: entry.decision, guardId: entry.guardId, name: entry.name },
                     { decision: 'denied', guardId: 'g_1', name: 'José Núñez' });

    // The internet goes: the alarm works from the replica, and waits in the queue.
    sim.stdin.write('down\n');
    await waitFor(async () => (await page.textContent('#status-cloud')).startsWith('Nube: sin conexión'), 30_000,
                  'the app to show the cloud gone');
    const second = Date.now() / 1000;
    const seen = Date.now();
    frigate.put(frigateCar({ id: `${second.toFixed(6)}-car2`, start: second, plate: '0XY 78O', score: 0.9 }));  // 0 for O, O for 0
    await page.waitForSelector('#alarm:not([hidden])', { timeout: 10_000 });
    console.log(`camera alarm on screen ${Date.now() - seen} ms after Frigate had the plate (tunnel down)`);
    assert.equal(await page.textContent('#alarm-name'), 'Marta Ríos');
    // A second phone that was not listening when it was raised (asleep, or
    // opened later): the stream's state on connecting catches it up.
    const other = await context.newPage();
    await gotoPage(other, `https://localhost:${lanPort}/`);
    await other.waitForSelector('#alarm:not([hidden])', { timeout: 10_000 });
    assert.equal(await other.textContent('#alarm-name'), 'Marta Ríos');
    await page.click('#alarm-allow');
    await page.fill('#alarm-allow-reason', 'Orden del administrador');
    await page.screenshot({ path: join(shots, 'alarm-allow-offline.png') });
    await page.click('#alarm-allow-form button[type=submit]');
    await page.waitForSelector('#alarm', { state: 'hidden' });
    await other.waitForSelector('#alarm', { state: 'hidden', timeout: 10_000 });  // answered on the first phone
    await page.waitForTimeout(1500);
    const during = await cloudEvents(sim);
    assert.equal(Object.keys(during.byType.ban_hit).length, 1, 'nothing reached a cloud that is down');
    sim.stdin.write('up\n');
    const back = await waitFor(async () => {
      const e = await cloudEvents(sim);
      return e && Object.keys(e.byType.ban_hit ?? {}).length >= 2 && Object.keys(e.byType.visitor_entry ?? {}).length >= 2 ? e : null;
    }, 60_000, 'the offline ban_hit and visitor_entry after the cloud is back');
    await page.waitForTimeout(2000);
    const final = await cloudEvents(sim);
    assert.equal(Object.keys(final.byType.ban_hit).length, 2, 'one ban_hit a car');
    assert.equal(Object.keys(final.byType.visitor_entry).length, 2, 'one entry an answer');
    const offlineHit = Object.values(back.byType.ban_hit).find((h) => h.bannedVisitorId === 'b_2');
    assert.equal(offlineHit.read, '0XY 78O');
    const offlineEntry = Object.values(back.byType.visitor_entry).find((e) => e.decision === 'allowed');
    assert.deepEqual({ name: offlineEntry.name, reason: offlineEntry.reason }, { name: 'Marta Ríos', reason: 'Orden del administrador' });
    const token = await page.evaluate(() => localStorage.getItem('token'));
    assert.ok(token && !box.text.includes(token), 'the session token never reaches the log');

    // The box restarts while an alarm is on screen: it forgets the alarm, the
    // phone keeps it, and the answer goes up as an entry.
    await other.close();
    const third = Date.now() / 1000;
    frigate.put(frigateCar({ id: `${third.toFixed(6)}-car3`, start: third, plate: 'ABC-123', score: 0.96 }));
    await page.waitForSelector('#alarm:not([hidden])', { timeout: 10_000 });
    await waitFor(async () => Object.keys((await cloudEvents(sim)).byType.ban_hit ?? {}).length >= 3, 30_000,
                  'the third ban_hit');
    const bootBefore = await page.getAttribute('#alarm', 'data-boot');
    await new Promise((resolve) => { box.once('exit', resolve); box.kill('SIGTERM'); });
    box = startBox();
    await waitFor(() => box.text.match(/LAN server ready\."/), 60_000, 'the restarted box');
    await waitFor(() => box.text.includes('The cloud welcomed the box.'), 60_000, 'the restarted box welcomed');
    // The phone's stream is back, with the new box's state (which holds no alarm).
    await waitFor(async () => {
      const boot = await page.getAttribute('#alarm', 'data-boot');
      return boot && boot !== bootBefore;
    }, 60_000, 'the phone to hear from the restarted box');
    assert.equal(await page.isVisible('#alarm'), true, 'the unanswered alarm stays on the phone');
    assert.equal(await page.textContent('#alarm-name'), 'José Núñez');
    await page.click('#alarm-deny');
    await page.waitForSelector('#alarm', { state: 'hidden' });
    const restarted = await waitFor(async () => {
      const e = await cloudEvents(sim);
      return e && Object.keys(e.byType.visitor_entry ?? {}).length >= 3 ? e : null;
    }, 60_000, 'the third visitor_entry');
    assert.equal(Object.keys(restarted.byType.ban_hit).length, 3, 'the restarted box raised nothing again');
    const third_entry = Object.values(restarted.byType.visitor_entry)
      .filter((e) => e.decision === 'denied' && e.name === 'José Núñez');
    assert.equal(third_entry.length, 2, 'the first car and this one, both turned away');
  } finally {
    await browser.close();
    console.log(`screenshots in ${shots}`);
  }
});
