// A Frigate for the hostile bench: tests/web/fake_frigate.mjs (Frigate
// 0.16's events API) on 127.0.0.1, printing its URL, where a car with the
// plate PLATE is seen every INTERVAL ms, a new event each time, until killed.
//   node frigate_peer.mjs JPEG PLATE INTERVAL_MS
import { readFileSync } from 'node:fs';
import { startFakeFrigate, frigateCar } from '../../tests/web/fake_frigate.mjs';

const [jpeg, plate, interval] = process.argv.slice(2);
const frigate = await startFakeFrigate(readFileSync(jpeg));
console.log(frigate.url);
let n = 0;
setInterval(() => {
  const start = Date.now() / 1000;
  frigate.put(frigateCar({ id: `${start.toFixed(6)}-bench${++n}`, start, plate, score: 0.95 }));
}, Number(interval));
