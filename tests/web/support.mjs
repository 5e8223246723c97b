// What the browser tests share: child processes whose output is kept, bounded
// waits, and Debian's chromium launched headless with the flags this machine
// needs (no background connections to a network that is not there).
import { execFileSync } from 'node:child_process';
import { pbkdf2Sync } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

// Keeps everything a child prints in child.text, from its start.
export function collect(child) {
  child.text = '';
  child.stdout.on('data', (d) => { child.text += d.toString(); });
  child.stderr.on('data', (d) => { child.text += d.toString(); });
  return child;
}

// The first truthy value of `check` (it may be async), polled every 100 ms for at most `ms`.
export async function waitFor(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Stops the children the way systemd would: SIGTERM, up to 6 s to exit (a box
// stops its embedded PostgreSQL on the way out), then SIGKILL. A SIGKILL
// alone left the box's postmaster running after the test.
export async function stopChildren(children) {
  await Promise.all(children.map((c) => new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    const timer = setTimeout(() => { c.kill('SIGKILL'); resolve(); }, 6000);
    c.once('exit', () => { clearTimeout(timer); resolve(); });
    c.kill('SIGTERM');
  })));
}

// The first match of `re` in what the child printed.
export function waitForOutput(child, re, ms) {
  return waitFor(() => child.text.match(re), ms, `${re} in:\n${child.text}`);
}

// page.goto, again when Chromium gave the load up because a network interface
// came or went on this machine (ERR_NETWORK_CHANGED: podman's networks in
// the tests running beside this one). At most 5 tries.
export async function gotoPage(page, url, options = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await page.goto(url, options);
    } catch (e) {
      if (attempt >= 5 || !String(e.message).includes('ERR_NETWORK_CHANGED')) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export function launchChromium() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Chromium as a phone that trusts the box: a persistent profile in `dir`
// (its service worker and caches kept between launches) whose NSS store, in
// a HOME of its own, trusts the box's certificate `certFile` as a phone
// trusts its CA; no ignoreHTTPSErrors (Chromium refuses a service worker
// fetched with any certificate error). The box is opened by `name`, mapped
// to 127.0.0.1: https://<name>:<port>/. With { ca: true } the certificate
// is a root trusted for the names it issues (a public CA on a phone:
// certutil -t C,,), and `name` may be a pattern (*.b7.box.test).
export async function launchPhone(dir, certFile, name = 'secbox.local', { ca = false } = {}) {
  const home = join(dir, 'home');
  const db = join(home, '.pki/nssdb');
  if (!existsSync(db)) {
    mkdirSync(db, { recursive: true });
    execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
  }
  execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', ca ? 'C,,' : 'P,,', '-n', ca ? 'public-root' : 'secbox-box',
                            '-i', certFile]);
  return chromium.launchPersistentContext(join(dir, 'chromium'), {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           `--host-resolver-rules=MAP ${name} 127.0.0.1`],
    env: { ...process.env, HOME: home },
  });
}

// A guard's PIN as the cloud stores it (cloud-protocol §5), a time as the
// protocol writes it, and a one-chunk snapshot message for the simulator's
// script.
export function pinHash(pin) {
  const salt = Buffer.from('booth-salt-0001!');
  return `pbkdf2-sha256$10000$${salt.toString('base64')}$${pbkdf2Sync(pin, salt, 10000, 32, 'sha256').toString('base64')}`;
}
export const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
export function snapshot(entity, rows) {
  return JSON.stringify({ v: 1, type: `snapshot.${entity}`, id: `c-${entity}`, ts: iso(Date.now()),
                          payload: { snapshotId: `s_${entity}`, version: 1, chunk: 1, chunks: 1, rows } });
}

// A port free now, for a LAN server that must keep its address across a restart.
export function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

// What the simulator (a child reading commands on stdin) has received, by
// type: {byType: {type: {clientId: data}}}, or null.
export async function cloudEvents(sim) {
  const before = sim.text.length;
  sim.stdin.write('events\n');
  await new Promise((r) => setTimeout(r, 300));
  const line = sim.text.slice(before).split('\n').find((l) => l.startsWith('{"byType"'));
  return line ? JSON.parse(line) : null;
}
