// Hostile load on the LAN server while a guard keeps using the app: printed
// figures, never assertions (bench/hostile_bench.sh runs it).
//   node hostile_lan.mjs LAN_PORT GUARD_TOKEN TOTAL PID [PAIRING_PORT]
// The request attackers come from 127.0.0.1 (12 connections, under the
// per-address cap of 16), idle sockets from 40 addresses 127.0.1.x (with the
// slow clients they fill the server's 64 slots: eviction must keep room),
// slow clients from 127.0.0.4, the guard from 127.0.0.2. Kinds of request:
//   login     bad logins with random guard ids and PINs (keep-alive)
//   headers   9 KiB of headers (431, connection closed)
//   body      a 70 KiB body (413, the rest drained)
//   slow      a request sent one byte every 200 ms, then left (slow reader)
//   idle      a TLS connection opened and held, nothing sent
// And, all the while (issue 35's shapes):
//   slow bodies   4 addresses (127.0.3.x) x 16 connections, each sending its
//                 headers, then a byte of its 4,000-byte body every 500 ms, opened
//                 again when the box closes it; 2 x 8 at the pairing form
//   PIN guesses   wrong PINs for the guard's own id (g_1) from 8 addresses
//                 (127.0.4.x), as fast as the box answers
//   the guard     signing in again (g_1, its PIN) every 3 s from its own
//                 address, then signing that session out
//   alarms        the guard's alarm stream, while a camera sees the plate of
//                 a ban whose reason is 300 KiB (bench/hostile_bench.sh)
//   pairing form  a GET from 127.0.0.5 every 500 ms
import https from 'node:https';
import tls from 'node:tls';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

const [port, guardToken, totalArg, pid, pairingPort] = process.argv.slice(2);
const total = Number(totalArg);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

function request(agent, localAddress, method, path, headers, body) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const req = https.request({ host: '127.0.0.1', port, method, path, agent, localAddress, rejectUnauthorized: false,
                                headers: { ...headers, ...(body ? { 'Content-Length': Buffer.byteLength(body) } : {}) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
      });
    req.setTimeout(15000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.code || e.message,
                                     ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    if (body) req.write(body);
    req.end();
  });
}

const counts = {};
const count = (kind, status) => { const k = `${kind} ${status}`; counts[k] = (counts[k] || 0) + 1; };

// The guard: ban list and a plate check in turn, from its own address.
const guard = { ok: 0, failed: 0, latencies: [], errors: {} };
let running = true;
async function guardLoop() {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const auth = { Authorization: `Bearer ${guardToken}`, 'Content-Type': 'application/json' };
  for (let i = 0; running; ++i) {
    const r = i % 2 === 0
      ? await request(agent, '127.0.0.2', 'GET', '/api/lan/ban-list', auth)
      : await request(agent, '127.0.0.2', 'POST', '/api/lan/check', auth, JSON.stringify({ plate: 'ZZZ-999' }));
    if (r.status === 200 || r.status === 304) { guard.ok++; guard.latencies.push(r.ms); } else {
      guard.failed++;
      guard.errors[r.status || r.error] = (guard.errors[r.status || r.error] || 0) + 1;
      guard.failures = guard.failures || [];
      if (guard.failures.length < 10) guard.failures.push({ request: i, error: r.status || r.error, afterMs: Math.round(r.ms) });
    }
  }
  agent.destroy();
}

function slowClient() {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.4', rejectUnauthorized: false }, () => {
      const text = 'GET /api/lan/ban-list HTTP/1.1\r\nHost: box\r\n';
      let i = 0;
      const t = setInterval(() => { if (i < text.length) s.write(text[i++]); else { clearInterval(t); s.destroy(); } }, 200);
      s.on('close', () => { clearInterval(t); resolve(); });
    });
    s.on('error', () => resolve());
    s.setTimeout(20000, () => s.destroy());
  });
}

// Issue 35's shapes, each a loop until `running` ends.
const open = new Set();
const slowBodies = { lan: { opened: 0, closed: 0, heldMs: [] }, pairing: { opened: 0, closed: 0, heldMs: [] } };
function slowBody(stats, localAddress, secure) {
  return new Promise((resolve) => {
    const started = Date.now();
    let timer;
    const path = secure ? '/api/lan/login' : '/pair';
    const s = (secure ? tls : net).connect({ host: '127.0.0.1', port: secure ? port : pairingPort, localAddress,
                                             rejectUnauthorized: false }, () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${secure ? port : pairingPort}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n`);
      timer = setInterval(() => s.write('x'), 500);
    });
    open.add(s);
    stats.opened++;
    s.on('error', () => {});
    s.on('data', () => {});
    s.on('close', () => {
      clearInterval(timer);
      open.delete(s);
      if (running) { stats.closed++; stats.heldMs.push(Date.now() - started); }
      resolve();
    });
  });
}
async function slowBodyLoop(stats, localAddress, secure) {
  while (running) {
    await slowBody(stats, localAddress, secure);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const guesses = { byAddress: {}, statuses: {} };
async function guessLoop(localAddress) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const mine = guesses.byAddress[localAddress] = { checked: 0, limited: 0 };
  while (running) {
    let pin = String(Math.floor(Math.random() * 10000)).padStart(4, '0');
    if (pin === '2468') pin = '1111';
    const r = await request(agent, localAddress, 'POST', '/api/lan/login', { 'Content-Type': 'application/json' },
                            JSON.stringify({ guardId: 'g_1', pin }));
    const k = r.status || r.error;
    guesses.statuses[k] = (guesses.statuses[k] || 0) + 1;
    if (r.status === 401) mine.checked++;
    if (r.status === 429) { mine.limited++; await new Promise((res) => setTimeout(res, 100)); }
  }
  agent.destroy();
}

const realGuard = { ok: 0, failed: 0, ms: [], errors: {} };
async function realGuardLoop() {
  const agent = new https.Agent({ keepAlive: false });
  while (running) {
    const started = process.hrtime.bigint();
    const r = await new Promise((resolve) => {
      const req = https.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/lan/login', agent,
                                  localAddress: '127.0.0.2', rejectUnauthorized: false,
                                  headers: { 'Content-Type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.setTimeout(20000, () => req.destroy(new Error('timeout')));
      req.on('error', (e) => resolve({ status: 0, error: e.code || e.message }));
      req.end(JSON.stringify({ guardId: 'g_1', pin: '2468' }));
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (r.status === 200) {
      realGuard.ok++;
      realGuard.ms.push(ms);
      const token = JSON.parse(r.body).token;
      await request(agent, '127.0.0.2', 'POST', '/api/lan/logout', { Authorization: `Bearer ${token}` });
    } else {
      realGuard.failed++;
      const k = r.status || r.error;
      realGuard.errors[k] = (realGuard.errors[k] || 0) + 1;
    }
    await new Promise((res) => setTimeout(res, 3000));
  }
  agent.destroy();
}

const alarmStream = { connections: 0, states: 0, alarms: 0, closedByServer: 0, largestMessage: 0 };
async function alarmLoop() {
  while (running) {
    alarmStream.connections++;
    await new Promise((resolve) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/api/lan/alarms/stream', localAddress: '127.0.0.2',
                              rejectUnauthorized: false, headers: { Authorization: `Bearer ${guardToken}` } }, (res) => {
        let buffer = '';
        res.on('data', (d) => {
          buffer += d;
          for (let at; (at = buffer.indexOf('\n\n')) >= 0;) {
            const message = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            alarmStream.largestMessage = Math.max(alarmStream.largestMessage, message.length);
            if (message.startsWith('event: state')) alarmStream.states++;
            if (message.startsWith('event: alarm')) alarmStream.alarms++;
          }
        });
        res.on('end', () => { if (running) alarmStream.closedByServer++; resolve(); });
        res.on('error', () => resolve());
      });
      open.add(req);
      req.on('error', () => resolve());
      req.on('close', () => { open.delete(req); resolve(); });
    });
    if (running) await new Promise((r) => setTimeout(r, 500));
  }
}

const pairingForm = { ok: 0, failed: 0, errors: {} };
async function pairingLoop() {
  while (running) {
    const r = await new Promise((resolve) => {
      const req = net.connect({ host: '127.0.0.1', port: pairingPort, localAddress: '127.0.0.5' }, () => {
        req.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${pairingPort}\r\nConnection: close\r\n\r\n`);
      });
      let text = '';
      req.setTimeout(10000, () => req.destroy());
      req.on('data', (d) => { text += d; });
      req.on('error', (e) => resolve(e.code || e.message));
      req.on('close', () => resolve(Number(text.slice(9, 12)) || 'closed'));
    });
    // 410: the box is paired (cloud-protocol §2), the form's answer from then on.
    if (r === 200 || r === 410) pairingForm.ok++; else { pairingForm.failed++; pairingForm.errors[r] = (pairingForm.errors[r] || 0) + 1; }
    await new Promise((res) => setTimeout(res, 500));
  }
}

function issue35Shapes() {
  const loops = [];
  for (let a = 1; a <= 4; ++a) for (let i = 0; i < 16; ++i) loops.push(slowBodyLoop(slowBodies.lan, `127.0.3.${a}`, true));
  if (pairingPort) {
    for (let a = 1; a <= 2; ++a) for (let i = 0; i < 8; ++i) loops.push(slowBodyLoop(slowBodies.pairing, `127.0.5.${a}`, false));
    loops.push(pairingLoop());
  }
  for (let a = 1; a <= 8; ++a) loops.push(guessLoop(`127.0.4.${a}`));
  loops.push(realGuardLoop(), alarmLoop());
  return loops;
}

const summary = (ms) => {
  const v = [...ms].sort((a, b) => a - b);
  const q = (p) => (v.length ? Number(v[Math.floor((v.length - 1) * p)].toFixed(0)) : null);
  return { n: v.length, p50: q(0.5), p99: q(0.99), max: q(1) };
};

async function main() {
  const before = rss();
  // The guard is using the app when the attack begins (its phone's
  // connection has shown its session); its sign-ins every 3 s open new
  // connections in the middle of the attack.
  const guardDone = guardLoop();
  await new Promise((r) => setTimeout(r, 1000));
  const shapes = issue35Shapes();
  const idle = [];
  const held = [];
  // Idle and slow sockets for the whole run (the per-address cap and the
  // server's eviction are what keep them from shutting the guard out).
  for (let i = 0; i < 40; ++i) {
    const s = tls.connect({ host: '127.0.0.1', port, localAddress: `127.0.1.${i + 1}`, rejectUnauthorized: false });
    s.on('error', () => {});
    idle.push(s);
  }
  for (let i = 0; i < 8; ++i) held.push(slowClient());
  const started = Date.now();
  const loginAgent = new https.Agent({ keepAlive: true, maxSockets: 8 });
  const closeAgent = new https.Agent({ keepAlive: false, maxSockets: 4 });
  let sent = 0;
  let peak = before;
  async function worker(n) {
    for (;;) {
      const i = sent++;
      if (i >= total) return;
      const kind = i % 50 === 0 ? 'headers' : i % 50 === 1 ? 'body' : 'login';
      let r;
      if (kind === 'login') {
        r = await request(loginAgent, '127.0.0.1', 'POST', '/api/lan/login', { 'Content-Type': 'application/json' },
                          JSON.stringify({ guardId: `x_${randomBytes(6).toString('hex')}`, pin: String(i % 10000) }));
      } else if (kind === 'headers') {
        r = await request(closeAgent, '127.0.0.1', 'GET', '/api/lan/ban-list', { 'X-Pad': 'a'.repeat(9 * 1024) });
      } else {
        r = await request(closeAgent, '127.0.0.1', 'POST', '/api/lan/entries', { 'Content-Type': 'application/json' },
                          'x'.repeat(70 * 1024));
      }
      count(kind, r.status || r.error);
      if (i % 5000 === 0) peak = Math.max(peak, rss());
      if (i % 10000 === 0 && n === 0) process.stderr.write(`${i} sent, VmRSS ${rss()} kB\n`);
    }
  }
  await Promise.all(Array.from({ length: 12 }, (_, n) => worker(n)));
  const seconds = (Date.now() - started) / 1000;
  // Issue 35's shapes go on for a minute at least (the hostile requests may end sooner).
  while (Date.now() - started < 60_000) await new Promise((r) => setTimeout(r, 500));
  for (const s of idle) s.destroy();
  await Promise.all(held);
  running = false;
  for (const s of open) s.destroy();
  await guardDone;
  await Promise.all(shapes);
  loginAgent.destroy();
  closeAgent.destroy();
  // The box gives freed memory back at its next host sample (every 10 s).
  await new Promise((r) => setTimeout(r, 11000));
  const after = rss();
  guard.latencies.sort((a, b) => a - b);
  const q = (p) => guard.latencies.length ? guard.latencies[Math.floor((guard.latencies.length - 1) * p)].toFixed(1) : '-';
  console.log(JSON.stringify({
    hostileRequests: total, seconds: Number(seconds.toFixed(1)), perSecond: Math.round(total / seconds),
    answers: counts, idleSockets: idle.length, slowClients: held.length,
    guard: { ok: guard.ok, failed: guard.failed, errors: guard.errors, failures: guard.failures, p50ms: q(0.5), p99ms: q(0.99), maxms: q(1) },
    slowBodies: { lan: { opened: slowBodies.lan.opened, closedByBox: slowBodies.lan.closed, heldMs: summary(slowBodies.lan.heldMs) },
                  pairing: { opened: slowBodies.pairing.opened, closedByBox: slowBodies.pairing.closed,
                             heldMs: summary(slowBodies.pairing.heldMs) } },
    shapesSeconds: Number(((Date.now() - started) / 1000).toFixed(1)),
    pinGuesses: { ...guesses, mostCheckedFromOneAddress: Math.max(0, ...Object.values(guesses.byAddress).map((a) => a.checked)) },
    realGuardSignIns: { ok: realGuard.ok, failed: realGuard.failed, errors: realGuard.errors, ms: summary(realGuard.ms) },
    alarmStream, pairingForm,
    rssKb: { before, peak: Math.max(peak, after), after, growth: after - before },
  }, null, 1));
}
main();
