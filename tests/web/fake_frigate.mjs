// A fake Frigate 0.16 for the browser tests, real HTTP on 127.0.0.1: the
// events API as Frigate answers it (GET /api/events: `after` and `before`
// strict on start_time, newest first unless sort=date_asc, at most `limit`
// (100 when not given), in_progress=1 for the events whose end_time is null;
// GET /api/events/<id>: one event, or 404 {"success": false, …}), and
// /api/<camera>/latest.jpg (the JPEG it is given; `height` is taken and `h`
// ignored, as 0.16 does). Events are Frigate's shape: sub_label at the top,
// the plate and its score under data. Like Frigate's nginx on port 5000, a
// JSON answer is kept 5 s per URL unless the request has `X-Cache-Bypass: 1`,
// and events that share a start time come in no particular order.
import { createServer } from 'node:http';

export function frigateCar({ id, camera = 'entrada', start, plate, score, end = null, subLabel = null }) {
  return {
    id, label: 'car', sub_label: subLabel, camera, start_time: start, end_time: end, false_positive: null,
    zones: ['gate'], thumbnail: null, has_clip: true, has_snapshot: true, retain_indefinitely: false, plus_id: null,
    model_hash: null, detector_type: 'cpu', model_type: 'ssd',
    data: { box: [0.4, 0.5, 0.2, 0.2], region: [0.3, 0.4, 0.4, 0.4], score: 0.86, top_score: 0.88, attributes: [],
            type: 'object', max_severity: 'alert', path_data: [], recognized_license_plate: plate,
            recognized_license_plate_score: score },
  };
}

export async function startFakeFrigate(jpeg) {
  const events = new Map();
  const requests = [];
  const cache = new Map();  // URL → { at, status, text }
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    requests.push(url.pathname + url.search);
    const json = (status, body) => {
      const bypass = req.headers['x-cache-bypass'] === '1';
      const kept = cache.get(req.url);
      let answer = { at: Date.now(), status, text: JSON.stringify(body) };
      let how = bypass ? 'BYPASS' : 'MISS';
      if (!bypass && kept && Date.now() - kept.at < 5000) {
        answer = kept;
        how = 'HIT';
      } else if (status === 200) {
        cache.set(req.url, answer);
      }
      res.writeHead(answer.status, { 'Content-Type': 'application/json', 'X-Cache-Status': how });
      res.end(answer.text);
    };
    if (url.pathname === '/api/events') {
      const q = url.searchParams;
      const after = Number(q.get('after') || 0);
      const before = Number(q.get('before') || 0);
      const limit = Number(q.get('limit') || 100);
      const inProgress = q.get('in_progress');
      let list = [...events.values()].filter((e) => (!after || e.start_time > after) && (!before || e.start_time < before));
      if (inProgress !== null) list = list.filter((e) => (e.end_time === null) === (inProgress === '1'));
      for (let i = list.length - 1; i > 0; i--) {  // ties: no order (SQLite's, whatever it is)
        const j = Math.floor(Math.random() * (i + 1));
        [list[i], list[j]] = [list[j], list[i]];
      }
      list.sort((a, b) => (q.get('sort') === 'date_asc' ? a.start_time - b.start_time : b.start_time - a.start_time));
      return json(200, list.slice(0, limit));
    }
    const one = url.pathname.match(/^\/api\/events\/([^/]+)$/);
    if (one) {
      const e = events.get(decodeURIComponent(one[1]));
      return e ? json(200, e) : json(404, { success: false, message: 'Event not found' });
    }
    if (/^\/api\/[^/]+\/latest\.jpg$/.test(url.pathname)) {
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': jpeg.length });
      return res.end(jpeg);
    }
    json(404, { success: false, message: 'Not found' });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    put(event) { events.set(event.id, structuredClone(event)); },
    requests,
    close() { return new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }); },
  };
}
