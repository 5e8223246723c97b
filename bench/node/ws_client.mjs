// The Node `ws` reference client for secbox-bench-tunnel: the same round
// trips (hello → welcome) and one-way 200-byte messages against the same
// simulator, printed as one JSON line.
//   node ws_client.mjs GATEWAY_URL CA_FILE TOKEN ROUND_TRIPS MESSAGES
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const [url, caFile, token, roundTrips, messages] = process.argv.slice(2);
const ws = new WebSocket(url, 'secbox.v1', {
  ca: readFileSync(caFile),
  headers: { Authorization: `Bearer ${token}`, 'X-Device-Id': 'dev_node', 'X-Secbox-Version': 'bench' },
});

let counter = 0;
const waiting = new Map();
const envelope = (type, payload) => {
  const id = `n-${++counter}`;
  return [id, JSON.stringify({ v: 1, type, id, ts: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), payload })];
};
const hello = { deviceId: 'dev_node', version: 'bench', bootId: 'bench', cursors: {}, queue: { depth: 0, oldestAt: null } };
const request = () => new Promise((resolve) => {
  const [id, text] = envelope('hello', hello);
  waiting.set(id, resolve);
  ws.send(text);
});

ws.on('message', (data) => {
  const m = JSON.parse(data.toString());
  const done = waiting.get(m.re);
  if (done) { waiting.delete(m.re); done(); }
});

ws.on('open', async () => {
  await request();
  const rtts = [];
  for (let i = 0; i < Number(roundTrips); i++) {
    const t0 = process.hrtime.bigint();
    await request();
    rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  rtts.sort((a, b) => a - b);
  const pad = { pad: 'x'.repeat(200 - 84) };
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < Number(messages); i++) {
    // The same bound the box keeps: wait while 4 MiB are buffered.
    while (ws.bufferedAmount > 4 << 20) await new Promise((r) => setImmediate(r));
    ws.send(envelope('bench.note', pad)[1]);
  }
  await request();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({
    rttMedianUs: rtts[Math.floor(rtts.length * 0.5)],
    rttP99Us: rtts[Math.floor(rtts.length * 0.99)],
    msgsPerS: Number(messages) / seconds,
    cpuUsPerMsg: (cpu.user + cpu.system) / Number(messages),
  }));
  ws.close();
});
ws.on('error', (e) => { console.error(String(e)); process.exit(1); });
