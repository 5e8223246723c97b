// The camera wall in headless Chromium: a real `secbox run` with one lavfi
// testsrc camera (ffmpeg encodes it → HLS) and one IP camera from a real RTSP
// server (GStreamer's rtsp-server, digest auth, H.264 with a 2 s keyframe
// interval: remuxed, never decoded), a guard logs in, opens Cameras, and the
// live view (the box's fMP4 through Media Source Extensions) plays both: each
// video's currentTime advances. Hidden, the live views stop; back, they play
// again. Without the box's live video, hls.js plays HLS (the fallback).
// Prints the latency of each; screenshots taken.
//   SECBOX_BINARY=… CLOUDSIM_BINARY=… SECBOX_WEB_DIR=… node --test tests/web/cameras.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { pbkdf2Sync } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { collect, waitFor, stopChildren, gotoPage } from './support.mjs';

const root = mkdtempSync(join(tmpdir(), 'secbox-cameras-'));
chmodSync(root, 0o711);
const shots = process.env.SECBOX_SCREENSHOTS || join(root, 'screenshots');
mkdirSync(shots, { recursive: true });
const children = [];
after(async () => {
  await stopChildren(children);
  if (!process.env.SECBOX_SCREENSHOTS) rmSync(root, { recursive: true, force: true });
});

// Glass to glass: for `frames` frames as the page shows them, the wall clock
// at their display time minus the clock the camera burnt into them (40
// blocks of 8x16 pixels in the top rows, bit k of the Unix time in ms).
// Returns [median, 95th percentile] in ms.
async function glassToGlass(page, camera, frames) {
  const ms = await page.evaluate(([cam, n]) => new Promise((resolve) => {
    const v = document.querySelector(`video[data-camera=${cam}]`);
    const canvas = Object.assign(document.createElement('canvas'), { width: 320, height: 16 });
    const g = canvas.getContext('2d', { willReadFrequently: true });
    const out = [];
    const step = (_, meta) => {
      g.drawImage(v, 0, 0, 320, 16, 0, 0, 320, 16);
      const px = g.getImageData(0, 0, 320, 16).data;
      let burnt = 0n;
      for (let k = 0; k < 40; k++) if (px[(8 * 320 + k * 8 + 4) * 4] > 128) burnt |= 1n << BigInt(k);
      const shown = BigInt(Math.round(performance.timeOrigin + meta.expectedDisplayTime)) & ((1n << 40n) - 1n);
      out.push(Number(shown - burnt));
      if (out.length >= n) resolve(out); else v.requestVideoFrameCallback(step);
    };
    v.requestVideoFrameCallback(step);
  }), [camera, frames]);
  ms.sort((a, b) => a - b);
  return [ms[Math.floor(ms.length / 2)], ms[Math.floor(ms.length * 0.95)]];
}

function pinHash(pin) {
  const salt = Buffer.from('booth-salt-0001!');
  return `pbkdf2-sha256$10000$${salt.toString('base64')}$${pbkdf2Sync(pin, salt, 10000, 32, 'sha256').toString('base64')}`;
}

test('the guard sees the live camera wall', { timeout: 180_000 }, async () => {
  const guard = JSON.stringify({ v: 1, type: 'snapshot.user', id: 'c-user', ts: new Date().toISOString(),
    payload: { snapshotId: 's_user', version: 1, chunk: 1, chunks: 1,
               rows: [{ id: 'g_1', communityId: 'com_1', role: 'guard', displayName: 'Ana Ruiz', pinHash: pinHash('2468') }] } });
  writeFileSync(join(root, 'script.jsonl'), guard + '\n');
  mkdirSync(join(root, 'sim'), { mode: 0o700 });
  const bootstrap = 'bt_camera_test_0123456789';
  const sim = collect(spawn(process.env.CLOUDSIM_BINARY, ['--dir', join(root, 'sim'), '--device', 'dev_cam', '--bootstrap',
                                                          bootstrap, '--script', join(root, 'script.jsonl')],
                            { stdio: ['pipe', 'pipe', 'pipe'] }));
  children.push(sim);
  const ready = JSON.parse((await waitFor(() => sim.text.match(/^\{.*\}$/m), 20_000, 'the simulator'))[0]);

  mkdirSync(join(root, 'etc/cameras'), { recursive: true, mode: 0o750 });
  mkdirSync(join(root, 'state'), { mode: 0o700 });
  writeFileSync(join(root, 'etc/cameras/gate.env'), 'INPUT=lavfi:testsrc\nSIZE=640x480\nFPS=15\nBITRATE=600k\n');
  // The IP camera: live over RTSP (digest auth), a keyframe every 2 s, the
  // wall clock burnt into each frame (tests/support/rtsp_camera.py --clock).
  const rtsp = collect(spawn('/usr/bin/python3', [fileURLToPath(new URL('../support/rtsp_camera.py', import.meta.url)),
                                                  '--user', 'admin', '--password', 'Caseta-2026', '--clock', 'door'],
                             { stdio: ['ignore', 'pipe', 'pipe'] }));
  children.push(rtsp);
  const rtspPort = JSON.parse((await waitFor(() => rtsp.text.match(/^\{"port": \d+\}$/m), 20_000, 'the RTSP camera'))[0]).port;
  writeFileSync(join(root, 'etc/cameras/door.env'), `INPUT=rtsp://admin:Caseta-2026@127.0.0.1:${rtspPort}/door\n`);
  writeFileSync(join(root, 'etc/secbox.env'),
                `CLOUD_CA_FILE=${ready.caFile}\nPAIRING_PORT=0\nLAN_PORT=0\nLAN_WEB_DIR=${process.env.SECBOX_WEB_DIR}\n`, { mode: 0o600 });
  writeFileSync(join(root, 'etc/cloud'), `${ready.baseUrl}\n`);  // install.sh --cloud
  const box = collect(spawn(process.env.SECBOX_BINARY, ['run'], {
    env: { PATH: process.env.PATH, SECBOX_ETC_DIR: join(root, 'etc'), SECBOX_STATE_DIR: join(root, 'state') },
    stdio: ['ignore', 'pipe', 'pipe'] }));
  children.push(box);
  const pairingPort = Number((await waitFor(() => box.text.match(/Pairing form ready\.","port":(\d+)/), 30_000, 'the pairing form'))[1]);
  const lanPort = Number((await waitFor(() => box.text.match(/LAN server ready\.","port":(\d+)/), 60_000, 'the LAN server'))[1]);
  const paired = await fetch(`http://127.0.0.1:${pairingPort}/pair`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ v: 1, cloudBaseUrl: ready.baseUrl, gatewayUrl: ready.gatewayUrl, deviceId: 'dev_cam', bootstrapToken: bootstrap }) });
  assert.equal(paired.status, 200);
  await waitFor(() => box.text.includes('Applied a snapshot'), 30_000, 'the guard list');
  await waitFor(() => box.text.split('Camera is live.').length > 2, 30_000, `the cameras:\n${box.text}`);

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 900, height: 700 }, locale: 'es-MX' });
    const page = await context.newPage();
    await gotoPage(page, `https://localhost:${lanPort}/`);
    await page.click('#guard-buttons [data-guard-id="g_1"]');  // a guard taps their name
    await page.fill('#pin', '2468');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#view-app:not([hidden])');
    await page.click('[data-tab=cameras]');
    await page.waitForSelector('video[data-camera=gate]', { timeout: 20_000 });
    const start = await waitFor(() => page.evaluate(() => {
      const v = document.querySelector('video[data-camera=gate]');
      return v.currentTime > 0 ? v.currentTime : 0;
    }), 30_000, 'the video to start');
    const later = await waitFor(() => page.evaluate((t0) => {
      const v = document.querySelector('video[data-camera=gate]');
      return v.currentTime > t0 + 2 ? v.currentTime : 0;
    }, start), 30_000, 'the video to advance');
    assert.ok(later > start + 2);
    assert.equal(await page.textContent('[data-camera=gate] .pill'), 'En vivo');
    // The live view: the box's fMP4 through Media Source Extensions.
    assert.equal(await page.evaluate(() => document.querySelector('video[data-camera=gate]').player.kind), 'mse');
    await new Promise((r) => setTimeout(r, 2000));  // settled
    const latency = await page.evaluate(() => document.querySelector('video[data-camera=gate]').player.latency());
    console.log(`live latency (MSE): ${latency === null ? 'unknown' : latency.toFixed(2) + ' s'} (the newest frame the box sent − the one on screen)`);

    // The IP camera, remuxed: plays too.
    await page.waitForSelector('video[data-camera=door]', { timeout: 20_000 });
    const doorStart = await waitFor(() => page.evaluate(() => {
      const v = document.querySelector('video[data-camera=door]');
      return v.currentTime > 0 ? v.currentTime : 0;
    }), 30_000, 'the IP camera to start');
    await waitFor(() => page.evaluate((t0) => document.querySelector('video[data-camera=door]').currentTime > t0 + 2, doorStart),
                  30_000, 'the IP camera to advance');
    assert.equal(await page.textContent('[data-camera=door] .pill'), 'En vivo');
    assert.equal(await page.evaluate(() => document.querySelector('video[data-camera=door]').player.kind), 'mse');
    await new Promise((r) => setTimeout(r, 2000));
    const [g2g, g2g95] = await glassToGlass(page, 'door', 150);
    console.log(`glass to glass (MSE), RTSP camera remuxed (2 s keyframes): median ${g2g} ms, 95th percentile ${g2g95} ms over 150 frames`);
    await page.screenshot({ path: join(shots, 'guard-cameras.png') });

    await page.screenshot({ path: join(shots, 'guard-cameras-live.png') });

    // Hidden: the live views stop (no video data for a screen no one sees);
    // back on the tab, they play again from the newest keyframe.
    const setVisibility = (state) => page.evaluate((s) => {
      Object.defineProperty(document, 'visibilityState', { value: s, configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    }, state);
    await setVisibility('hidden');
    assert.equal(await page.locator('video').count(), 0, 'hidden: no live view left running');
    await setVisibility('visible');
    await page.waitForSelector('video[data-camera=gate]', { timeout: 20_000 });
    const again = await waitFor(() => page.evaluate(() => {
      const v = document.querySelector('video[data-camera=gate]');
      return v && v.currentTime > 0 ? v.currentTime : 0;
    }), 30_000, 'the live view to play again');
    await waitFor(() => page.evaluate((t0) => document.querySelector('video[data-camera=gate]').currentTime > t0 + 1, again),
                  30_000, 'the live view to advance again');

    // Another tab and back: the player goes and comes back, with a picture
    // from the box's last keyframe at once.
    await page.click('[data-tab=check]');
    assert.equal(await page.locator('video').count(), 0);
    const opened = Date.now();
    await page.click('[data-tab=cameras]');
    await page.waitForSelector('video[data-camera=gate]', { timeout: 20_000 });
    await waitFor(() => page.evaluate(() => document.querySelector('video[data-camera=gate]').readyState >= 2), 20_000,
                  'the first picture');
    console.log(`first picture ${Date.now() - opened} ms after opening the Cameras tab (MSE)`);

    // The fallback: a box that offers no live video for a camera (or a
    // phone that cannot play it) gets HLS through hls.js.
    await page.route('**/api/lan/streams', async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      for (const s of body.streams) delete s.live;
      await route.fulfill({ response: res, json: body });
    });
    await page.click('[data-tab=check]');
    await page.click('[data-tab=cameras]');
    await page.waitForSelector('video[data-camera=gate]', { timeout: 20_000 });
    const hlsStart = await waitFor(() => page.evaluate(() => {
      const v = document.querySelector('video[data-camera=gate]');
      return v.currentTime > 0 && v.player?.playingDate ? v.currentTime : 0;
    }), 30_000, 'the HLS fallback to start');
    await waitFor(() => page.evaluate((t0) => document.querySelector('video[data-camera=gate]').currentTime > t0 + 2, hlsStart),
                  30_000, 'the HLS fallback to advance');
    const hlsLatency = await page.evaluate(() => (Date.now() - document.querySelector('video[data-camera=gate]').player.playingDate.getTime()) / 1000);
    console.log(`live latency (HLS fallback): ${hlsLatency.toFixed(2)} s (now − EXT-X-PROGRAM-DATE-TIME of the playing frame)`);
    await waitFor(() => page.evaluate(() => document.querySelector('video[data-camera=door]')?.currentTime > 1), 30_000,
                  'the IP camera over HLS');
    const [hlsG2g, hlsG2g95] = await glassToGlass(page, 'door', 90);
    console.log(`glass to glass (HLS fallback), the same camera: median ${hlsG2g} ms, 95th percentile ${hlsG2g95} ms over 90 frames`);

    // Hidden for a while (the HLS player falls behind), then visible: back to live.
    const behind = () => page.evaluate(() => {
      const v = document.querySelector('video[data-camera=gate]');
      return (Date.now() - v.player.playingDate.getTime()) / 1000;
    });
    await page.evaluate(() => document.querySelector('video[data-camera=gate]').pause());
    await setVisibility('hidden');
    await new Promise((r) => setTimeout(r, 3000));
    const paused = await behind();
    assert.ok(paused > 4.5, `the paused player should be behind (${paused} s)`);
    await setVisibility('visible');
    // Left alone it would stay paused; back on the tab it plays, near the live edge.
    await waitFor(async () => !(await page.evaluate(() => document.querySelector('video[data-camera=gate]').paused)) &&
                              (await behind()) < 3.5, 10_000, 'the player to play at the live edge again');
  } finally {
    await browser.close();
  }
});
