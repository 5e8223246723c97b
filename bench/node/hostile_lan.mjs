// Hostile load on the LAN server while a guard keeps using the app: printed
// figures, never assertions (bench/hostile_bench.sh runs it).
//   node hostile_lan.mjs LAN_PORT GUARD_TOKEN TOTAL PID
// The request attackers come from 127.0.0.1 (12 connections, under the
// per-address cap of 16), idle sockets from 40 addresses 127.0.1.x (with the
// slow clients they fill the server's 64 slots: eviction must keep room),
// slow clients from 127.0.0.4, the guard from 127.0.0.2. Kinds of request:
//   login     bad logins with random guard ids and PINs (keep-alive)
//   headers   9 KiB of headers (431, connection closed)
//   body      a 70 KiB body (413, the rest drained)
//   slow      a request sent one byte every 200 ms, then left (slow reader)
//   idle      a TLS connection opened and held, nothing sent
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

const [port, guardToken, totalArg, pid] = process.argv.slice(2);
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

async function main() {
  const before = rss();
  const guardDone = guardLoop();
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
  for (const s of idle) s.destroy();
  await Promise.all(held);
  running = false;
  await guardDone;
  loginAgent.destroy();
  closeAgent.destroy();
  await new Promise((r) => setTimeout(r, 1000));
  const after = rss();
  guard.latencies.sort((a, b) => a - b);
  const q = (p) => guard.latencies.length ? guard.latencies[Math.floor((guard.latencies.length - 1) * p)].toFixed(1) : '-';
  console.log(JSON.stringify({
    hostileRequests: total, seconds: Number(seconds.toFixed(1)), perSecond: Math.round(total / seconds),
    answers: counts, idleSockets: idle.length, slowClients: held.length,
    guard: { ok: guard.ok, failed: guard.failed, errors: guard.errors, p50ms: q(0.5), p99ms: q(0.99), maxms: q(1) },
    rssKb: { before, peak: Math.max(peak, after), after, growth: after - before },
  }, null, 1));
}
main();
