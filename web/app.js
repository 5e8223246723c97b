// The guard app: login, ban check, today's guests, walk-in entries and notes,
// offline first. Entries and notes go to an outbox in IndexedDB first and are
// posted with their clientId until the box has them (201 or 200), so an entry
// made while the box is unreachable is sent when it comes back, never twice.
// Camera alarms arrive on a stream from the box (server-sent events read with
// fetch, so the token stays in a header) and take the whole screen until a
// guard answers; the answer goes through the same outbox.

const STRINGS = {
  es: {
    'login.title': 'Entrar a la caseta', 'login.guard': 'Guardia (ID)', 'login.pin': 'PIN', 'login.submit': 'Entrar',
    'login.wrong': 'Guardia o PIN incorrecto.', 'login.locked': 'Demasiados intentos. Espera {s} s.',
    'login.offline': 'No hay conexión con la caseta.',
    'named.offer': 'Esta caseta tiene una dirección segura: ábrela ahí para instalar la app y usarla sin conexión.',
    'login.pick': 'Toca tu nombre', 'login.type': 'Escribir un ID', 'login.choose': 'Toca tu nombre o escribe tu ID.',
    'age.bans': 'Lista de prohibidos: {age}', 'age.guests': 'Lista de invitados: {age}', 'age.unknown': 'sin datos',
    'tab.check': 'Revisar', 'tab.guests': 'Visitas', 'tab.note': 'Nota', 'tab.cameras': 'Cámaras',
    'cameras.none': 'No hay cámaras configuradas en esta caseta.', 'cameras.offline': 'No hay conexión con la caseta.',
    'cameras.noplayer': 'Este navegador no puede reproducir las cámaras.',
    'camera.live': 'En vivo', 'camera.starting': 'Iniciando…', 'camera.stalled': 'Sin señal', 'camera.failed': 'Falla', 'camera.unauthorized': 'Contraseña rechazada',
    'check.label': 'Placa o nombre', 'check.placeholder': 'ABC-123 o nombre',
    'check.banned': 'PROHIBIDO: no dejar pasar', 'check.clear': '✓ Sin prohibición',
    'check.count': '{n} personas prohibidas en la lista',
    'check.count.one': '1 persona prohibida en la lista',
    'guests.title': 'Visitas esperadas hoy', 'guests.none': 'No hay visitas esperadas hoy.',
    'guests.walkin': 'Visita sin aviso: nombre', 'guests.plate': 'Placa (opcional)', 'guests.unit': 'Unidad {u}',
    'entry.allow': 'Dejar pasar', 'entry.deny': 'No dejar pasar',
    'entry.sent': 'Entrada registrada.', 'entry.saved': 'Guardada en este equipo; se enviará al volver la conexión.',
    'note.label': 'Nota para la administración', 'note.submit': 'Guardar nota', 'note.sent': 'Nota registrada.',
    'status.cloud.ok': 'Nube: conectada', 'status.cloud.down': 'Nube: sin conexión (la caseta sigue funcionando)',
    'status.box.down': 'Sin conexión con la caseta', 'status.pairing': 'Caseta sin vincular',
    'status.queue': 'Por enviar: {n}', 'status.local': '{n} en este equipo',
    'status.fresh': 'Listas: {age}', 'status.fresh.never': 'Listas: nunca actualizadas',
    'age.now': 'recién', 'age.min': 'hace {n} min', 'age.h': 'hace {n} h', 'age.d': 'hace {n} días',
    'logout': 'Salir', 'rejected': 'La caseta rechazó el registro: {m}',
    'alarm.title': '⚠ Alerta de cámara: persona prohibida', 'alarm.camera': 'Cámara', 'alarm.photo': 'Foto registrada',
    'alarm.read': 'Placa leída {read} · {score} % · cámara {camera}', 'alarm.face': 'Rostro reconocido · {score} % · cámara {camera}',
    'alarm.misread': ' (lectura parecida, compárela)', 'alarm.deny': 'No pasó', 'alarm.allow': 'Dejar pasar de todos modos',
    'alarm.reason': 'Motivo para dejarle pasar', 'alarm.confirm': 'Confirmar la entrada', 'alarm.more': '+{n} alertas más',
    'alarm.answered': 'Alerta atendida.', 'alarm.banned': ' · placa prohibida {plate}',
  },
  en: {
    'login.title': 'Sign in to the booth', 'login.guard': 'Guard (ID)', 'login.pin': 'PIN', 'login.submit': 'Sign in',
    'login.wrong': 'Wrong guard or PIN.', 'login.locked': 'Too many attempts. Wait {s} s.',
    'login.offline': 'The booth box cannot be reached.',
    'named.offer': 'This booth has a trusted address: open the app there to install it and use it offline.',
    'login.pick': 'Tap your name', 'login.type': 'Type an ID instead', 'login.choose': 'Tap your name or type your ID.',
    'age.bans': 'Ban list: {age}', 'age.guests': 'Guest list: {age}', 'age.unknown': 'no data yet',
    'tab.check': 'Check', 'tab.guests': 'Guests', 'tab.note': 'Note', 'tab.cameras': 'Cameras',
    'cameras.none': 'No cameras are set up on this box.', 'cameras.offline': 'The booth box cannot be reached.',
    'cameras.noplayer': 'This browser cannot play the cameras.',
    'camera.live': 'Live', 'camera.starting': 'Starting…', 'camera.stalled': 'No signal', 'camera.failed': 'Failed', 'camera.unauthorized': 'Password refused',
    'check.label': 'Plate or name', 'check.placeholder': 'ABC-123 or a name',
    'check.banned': 'BANNED: do not let in', 'check.clear': '✓ Not banned',
    'check.count': '{n} banned people on the list',
    'check.count.one': '1 banned person on the list',
    'guests.title': 'Guests expected today', 'guests.none': 'No guests expected today.',
    'guests.walkin': 'Walk-in visitor: name', 'guests.plate': 'Plate (optional)', 'guests.unit': 'Unit {u}',
    'entry.allow': 'Let in', 'entry.deny': 'Turn away',
    'entry.sent': 'Entry recorded.', 'entry.saved': 'Saved on this device; it will be sent when the connection is back.',
    'note.label': 'Note for the administration', 'note.submit': 'Save note', 'note.sent': 'Note recorded.',
    'status.cloud.ok': 'Cloud: connected', 'status.cloud.down': 'Cloud: offline (the booth keeps working)',
    'status.box.down': 'Booth box unreachable', 'status.pairing': 'Box not paired',
    'status.queue': 'To send: {n}', 'status.local': '{n} on this device',
    'status.fresh': 'Lists: {age}', 'status.fresh.never': 'Lists: never updated',
    'age.now': 'just now', 'age.min': '{n} min ago', 'age.h': '{n} h ago', 'age.d': '{n} days ago',
    'logout': 'Sign out', 'rejected': 'The box refused the record: {m}',
    'alarm.title': '⚠ Camera alarm: banned visitor', 'alarm.camera': 'Camera', 'alarm.photo': 'Photo on file',
    'alarm.read': 'Plate read {read} · {score} % · camera {camera}', 'alarm.face': 'Face recognised · {score} % · camera {camera}',
    'alarm.misread': ' (a close read: compare it)', 'alarm.deny': 'Turned away', 'alarm.allow': 'Let in anyway',
    'alarm.reason': 'Why they are let in', 'alarm.confirm': 'Confirm the entry', 'alarm.more': '+{n} more alarms',
    'alarm.answered': 'Alarm answered.', 'alarm.banned': ' · banned plate {plate}',
  },
};

let lang = localStorage.getItem('lang') || (navigator.language.startsWith('en') ? 'en' : 'es');
const t = (key, vars = {}) => (STRINGS[lang][key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
const $ = (id) => document.getElementById(id);

function applyStrings() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  for (const el of document.querySelectorAll('[data-tp]')) el.placeholder = t(el.dataset.tp);
  $('lang').textContent = lang === 'es' ? 'EN' : 'ES';
}

// ------------------------------------------------------------- session --

const session = {
  get token() { return localStorage.getItem('token'); },
  get guard() { return JSON.parse(localStorage.getItem('guard') || 'null'); },
  save(token, guard) { localStorage.setItem('token', token); localStorage.setItem('guard', JSON.stringify(guard)); },
  clear() { localStorage.removeItem('token'); localStorage.removeItem('guard'); },
};

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch { /* 304 or empty */ }
  return { status: res.status, data, headers: res.headers };
}

// -------------------------------------------------------------- outbox --

const outbox = {
  db: null,
  async open() {
    this.db = await new Promise((resolve, reject) => {
      const req = indexedDB.open('secbox', 1);
      req.onupgradeneeded = () => req.result.createObjectStore('outbox', { keyPath: 'clientId' });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  },
  tx(mode, fn) {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction('outbox', mode);
      const result = fn(tx.objectStore('outbox'));
      tx.oncomplete = () => resolve(result.result ?? result);
      tx.onerror = () => reject(tx.error);
    });
  },
  add(item) { return this.tx('readwrite', (s) => s.put(item)); },
  remove(clientId) { return this.tx('readwrite', (s) => s.delete(clientId)); },
  all() { return this.tx('readonly', (s) => s.getAll()); },
};

let flushing = false;
// Posts what waits, oldest first; stops at the first network failure.
async function flush() {
  if (flushing || !session.token) return;
  flushing = true;
  try {
    const items = (await outbox.all()).sort((a, b) => a.createdAt - b.createdAt);
    for (const item of items) {
      let res;
      try {
        res = await api('POST', item.path, item.body);
        boxReachable = true;
      } catch {
        boxReachable = false;  // the box is unreachable: keep it, say so
        break;
      }
      if (res.status === 201 || res.status === 200) {
        await outbox.remove(item.clientId);
      } else if (res.status === 401) {
        showLogin();
        break;
      } else if (res.status === 404 && item.body.asEntry) {
        // An alarm the box forgot: the same answer, as an entry, with the same clientId.
        item.path = '/api/lan/entries';
        item.body = { ...item.body.asEntry, clientId: item.clientId, occurredAt: item.body.occurredAt };
        await outbox.add(item);
        items.push(item);
      } else if (res.status === 400 || res.status === 404) {
        // It will never be accepted (404: an alarm the box no longer holds): say so, keep nothing broken.
        await outbox.remove(item.clientId);
        toast(t('rejected', { m: res.data?.hint ?? res.status }));
      } else {
        break;  // 503 and the like: try again later
      }
    }
  } finally {
    flushing = false;
    renderStatus();
  }
}

// Records an entry or a note: on this device first, then to the box.
async function record(path, body, sentKey) {
  const item = { clientId: crypto.randomUUID(), path, createdAt: Date.now(),
                 body: { ...body, occurredAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } };
  item.body.clientId = item.clientId;
  await outbox.add(item);
  await flush();
  const waiting = (await outbox.all()).some((i) => i.clientId === item.clientId);
  toast(waiting ? t('entry.saved') : t(sentKey));
}

// -------------------------------------------------------------- status --

let lastStatus = JSON.parse(localStorage.getItem('lastStatus') || 'null');
let boxReachable = true;

function age(iso) {
  if (!iso) return null;
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 90) return t('age.now');
  if (s < 5400) return t('age.min', { n: Math.round(s / 60) });
  if (s < 172800) return t('age.h', { n: Math.round(s / 3600) });
  return t('age.d', { n: Math.round(s / 86400) });
}

async function refreshStatus() {
  if (!session.token) return;
  try {
    const res = await api('GET', '/api/lan/status');
    if (res.status === 401) return showLogin();
    lastStatus = res.data;
    localStorage.setItem('lastStatus', JSON.stringify(lastStatus));
    offerNamedAddress(lastStatus.lan);
    boxReachable = true;
  } catch {
    boxReachable = false;
  }
  renderStatus();
}

// Opened at a bare address (a self-signed certificate: no offline app, no
// installation), the app offers the box's named address once this phone
// resolves that name and trusts its certificate (cloud-protocol §7.7): a
// request that fails for either reason fails here too. A probe that found
// none is tried again a minute later (a busy box, a phone just joined).
let namedProbed = 0;   // when the last probe started; Infinity once offered
async function offerNamedAddress(lan) {
  if (Date.now() - namedProbed < 60_000 || !lan?.name || !lan.trusted || !lan.addresses?.length) return;
  if (location.hostname === lan.name || location.hostname.endsWith(`.${lan.name}`)) return;
  namedProbed = Date.now();
  for (const address of lan.addresses) {
    try {
      await fetch(new URL('/healthz', address), { mode: 'no-cors', cache: 'no-store', signal: AbortSignal.timeout(5000) });
      $('named-link').href = address;
      $('named-link').textContent = new URL(address).host;
      $('named-offer').hidden = false;
      namedProbed = Infinity;
      return;
    } catch { /* not resolved or not trusted here: the next one */ }
  }
}

async function renderStatus() {
  const local = outbox.db ? (await outbox.all()).length : 0;
  const cloud = $('status-cloud');
  if (!boxReachable) {
    cloud.textContent = t('status.box.down');
    cloud.className = 'pill bad';
  } else if (lastStatus?.pairing !== 'paired') {
    cloud.textContent = t('status.pairing');
    cloud.className = 'pill bad';
  } else if (lastStatus.tunnel === 'connected' && lastStatus.welcomed) {
    cloud.textContent = t('status.cloud.ok');
    cloud.className = 'pill ok';
  } else {
    cloud.textContent = t('status.cloud.down');
    cloud.className = 'pill warn';
  }
  const depth = boxReachable && lastStatus ? lastStatus.queue.depth : 0;
  const queue = $('status-queue');
  queue.textContent = t('status.queue', { n: depth }) + (local ? ` · ${t('status.local', { n: local })}` : '');
  queue.className = `pill ${local || depth ? 'warn' : 'ok'}`;
  queue.dataset.local = String(local);
  const when = age(lastStatus?.replica?.banned_visitor?.lastAppliedAt);
  $('status-fresh').textContent = when ? t('status.fresh', { age: when }) : t('status.fresh.never');
  // How fresh each list is, as the box last said (kept on the phone: it
  // still says so when the box cannot be reached).
  const bansAge = age(lastStatus?.replica?.banned_visitor?.lastAppliedAt);
  const guestsAge = age(lastStatus?.replica?.guest_authorization?.lastAppliedAt);
  $('ban-age').textContent = t('age.bans', { age: bansAge ?? t('age.unknown') });
  $('guest-age').textContent = t('age.guests', { age: guestsAge ?? t('age.unknown') });
}

// ---------------------------------------------------------------- lists --

let bans = [];
const normPlate = (s) => (s || '').toUpperCase().replace(/[\s.-]/g, '');
const normName = (s) => (s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/\s+/g, ' ').trim();

async function loadBans() {
  try {
    const res = await api('GET', '/api/lan/ban-list');
    if (res.status === 200) bans = res.data.bans;
  } catch { /* keep the last list; the service worker may have answered */ }
  $('ban-count').textContent = t(bans.length === 1 ? 'check.count.one' : 'check.count', { n: bans.length });
  renderBans();
}

function matches(query) {
  const p = normPlate(query);
  const n = normName(query);
  if (!p && !n) return [];
  return bans.filter((b) => (p.length >= 3 && normPlate(b.plate) === p) || (n.length >= 3 && normName(b.fullName).includes(n)));
}

function renderBans() {
  const query = $('search').value;
  const found = matches(query);
  const list = $('ban-results');
  list.replaceChildren(...found.map((b) => {
    const li = document.createElement('li');
    li.className = 'ban';
    if (b.photo) {
      const img = document.createElement('img');
      img.alt = '';
      img.className = 'ban-photo';
      showBanPhoto(img, b.photo);
      li.append(img);
    }
    const text = document.createElement('div');
    text.className = 'grow';
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = b.fullName;
    const meta = document.createElement('div');
    meta.className = 'meta';
    if (b.plate) {
      const plate = document.createElement('span');
      plate.className = 'plate';
      plate.textContent = b.plate;
      meta.append(plate, ' ');
    }
    meta.append(b.reason || '');
    text.append(name, meta);
    li.append(text);
    return li;
  }));
  const verdict = $('check-verdict');
  verdict.hidden = !query.trim();
  verdict.className = `verdict ${found.length ? 'bad' : 'ok'}`;
  verdict.textContent = found.length ? t('check.banned') : t('check.clear');
}

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

async function loadGuests() {
  let guests = [];
  try {
    const res = await api('GET', `/api/lan/schedule?date=${today()}`);
    if (res.status === 200) guests = res.data.authorizations;
  } catch { /* offline: the service worker's copy, or nothing */ }
  const list = $('guest-list');
  if (!guests.length) {
    const li = document.createElement('li');
    li.textContent = t('guests.none');
    return list.replaceChildren(li);
  }
  list.replaceChildren(...guests.map((g) => {
    const li = document.createElement('li');
    const text = document.createElement('div');
    text.className = 'grow';
    text.innerHTML = '<div class="name"></div><div class="meta"></div>';
    text.firstChild.textContent = g.guestName;
    text.lastChild.textContent = [g.plate, t('guests.unit', { u: g.unitLabel || g.unitId })].filter(Boolean).join(' · ');
    const allow = document.createElement('button');
    allow.className = 'allow';
    allow.textContent = t('entry.allow');
    allow.onclick = () => record('/api/lan/entries', { guestAuthorizationId: g.id, unitId: g.unitId, name: g.guestName,
                                                        plate: g.plate || undefined, decision: 'allowed' }, 'entry.sent');
    const deny = document.createElement('button');
    deny.className = 'deny';
    deny.textContent = t('entry.deny');
    deny.onclick = () => record('/api/lan/entries', { guestAuthorizationId: g.id, unitId: g.unitId, name: g.guestName,
                                                       plate: g.plate || undefined, decision: 'denied' }, 'entry.sent');
    const buttons = document.createElement('div');
    buttons.className = 'row';
    buttons.append(allow, deny);
    li.className = 'guest';
    li.append(text, buttons);
    return li;
  }));
}

// ------------------------------------------------------------- cameras --
// One <video> a ready stream. The live view: the box's fragmented MP4 (a
// fragment a frame) fed to Media Source Extensions from one streamed fetch,
// the playhead kept at the newest frame — under a second from the camera.
// The fallback, where MSE cannot play it (no MSE, another codec, no live
// video from the box yet, three failed tries): HLS through hls.js (loaded
// only then: 600 KB a cheap phone should not fetch for nothing). Both send
// the session token in a header, never in a URL.

const players = new Map();  // camera -> { hls, live, video, tile, liveFailures }

class LivePlayer {
  constructor(video, url, type, onEnd) {
    this.kind = 'mse';
    this.onEnd = onEnd;
    this.video = video;
    this.queue = [];
    this.lastAppend = 0;  // performance.now() of the newest bytes appended
    this.abort = new AbortController();
    this.source = new MediaSource();
    this.objectUrl = URL.createObjectURL(this.source);
    video.src = this.objectUrl;
    this.source.addEventListener('sourceopen', () => this.run(url, type).catch(() => this.end(onEnd)), { once: true });
  }

  async run(url, type) {
    this.buffer = this.source.addSourceBuffer(type);
    this.buffer.mode = 'segments';
    this.buffer.addEventListener('updateend', () => { this.keepAtEdge(); this.pump(); });
    const res = await fetch(url, { headers: { Authorization: `Bearer ${session.token}` }, cache: 'no-store',
                                   signal: this.abort.signal });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      this.queue.push(value);
      this.pump();
    }
    throw new Error('the stream ended');  // ffmpeg restarted: start over with its new init segment
  }

  pump() {
    if (this.ended || !this.buffer) return;
    // A media error closes the source: start over rather than keep what
    // arrives in a queue that nothing drains.
    if (this.source.readyState !== 'open') return this.end(this.onEnd);
    if (this.buffer.updating || !this.queue.length) return;
    const size = this.queue.reduce((n, c) => n + c.length, 0);
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const c of this.queue) { bytes.set(c, at); at += c.length; }
    this.queue = [];
    // Keep 20 s behind the playhead at most: a phone's memory is small.
    const b = this.buffer.buffered;
    try {
      if (b.length && this.video.currentTime - b.start(0) > 30) {
        this.buffer.remove(b.start(0), this.video.currentTime - 20);
        this.queue.push(bytes);
        return;
      }
      this.buffer.appendBuffer(bytes);
    } catch {
      return this.end(this.onEnd);  // the buffer is full or gone: start over from the newest keyframe
    }
    this.lastAppend = performance.now();
  }

  // At the newest frame: a join starts where the box's first keyframe is, a
  // gap (the box skipped to a keyframe for a phone that fell behind) is
  // jumped, and more than a second behind (a hidden tab, a busy phone) jumps
  // to the edge; a little behind, it plays a little faster until it is back.
  keepAtEdge() {
    const b = this.buffer.buffered;
    if (!b.length) return;
    const last = b.length - 1;
    const v = this.video;
    const behind = b.end(last) - v.currentTime;
    if (v.currentTime < b.start(last) || behind > 1) v.currentTime = Math.max(b.start(last), b.end(last) - 0.1);
    else v.playbackRate = behind > 0.25 ? 1.1 : 1;
    if (v.paused && document.visibilityState === 'visible') v.play().catch(() => {});
  }

  // Seconds from the newest frame the box sent to the one on screen.
  latency() {
    const b = this.buffer?.buffered;
    if (!b?.length) return null;
    return b.end(b.length - 1) - this.video.currentTime + (performance.now() - this.lastAppend) / 1000;
  }

  end(onEnd) {
    if (this.ended) return;
    this.destroy();
    onEnd?.();
  }

  destroy() {
    this.ended = true;
    this.abort.abort();
    URL.revokeObjectURL(this.objectUrl);
  }
}
let camerasTimer;

function loadHlsLibrary() {
  if (window.Hls) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = '/vendor/hls.min.js';
    s.onload = resolve;
    s.onerror = reject;
    document.head.append(s);
  });
}

function cameraMessage(key) {
  const el = $('cameras-message');
  el.hidden = !key;
  el.textContent = key ? t(key) : '';
}

function cameraTile(stream) {
  let p = players.get(stream.camera);
  if (!p) {
    const tile = document.createElement('figure');
    tile.className = 'camera';
    tile.dataset.camera = stream.camera;
    tile.innerHTML = '<div class="offline"></div><figcaption><span class="name"></span><span class="pill"></span></figcaption>';
    tile.querySelector('.name').textContent = stream.camera;
    $('camera-wall').append(tile);
    p = { tile, hls: null, video: null };
    players.set(stream.camera, p);
  }
  const badge = p.tile.querySelector('.pill');
  badge.className = `pill ${stream.state}`;
  badge.textContent = t(`camera.${stream.state}`);
  return p;
}

function newVideo(stream, p) {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  video.dataset.camera = stream.camera;
  p.tile.querySelector('.offline')?.replaceWith(video);
  return video;
}

function stopVideo(p) {
  p.video?.replaceWith(Object.assign(document.createElement('div'), { className: 'offline' }));
  p.video = null;
}

function canPlayLive(stream, p) {
  return stream.live && (p.liveFailures ?? 0) < 3 && window.MediaSource?.isTypeSupported(stream.live.type);
}

function play(stream, p) {
  if (p.hls || p.live) return;
  if (canPlayLive(stream, p)) {
    const video = newVideo(stream, p);
    const live = new LivePlayer(video, stream.live.url, stream.live.type, () => {
      // Ended or failed: this tile starts over on the next poll (HLS after three failures).
      if (p.live !== live) return;
      p.live = null;
      p.liveFailures = (p.liveFailures ?? 0) + (live.lastAppend ? 0 : 1);
      stopVideo(p);
    });
    p.live = live;
    p.video = video;
    video.player = live;  // for the browser test's latency figure
    return;
  }
  if (!window.Hls?.isSupported()) return;
  const video = newVideo(stream, p);
  const hls = new window.Hls({
    // 1 s segments: play 1.5 s behind the live edge, and speed up a little
    // (never skip) when further behind.
    liveSyncDuration: 1.5,
    liveMaxLatencyDuration: 5,
    maxLiveSyncPlaybackRate: 1.1,
    xhrSetup: (xhr) => xhr.setRequestHeader('Authorization', `Bearer ${session.token}`),
  });
  hls.on(window.Hls.Events.ERROR, (_, data) => {
    if (!data.fatal) return;
    // A restarted ffmpeg or a box that went away: start this player over on the next poll.
    hls.destroy();
    p.hls = null;
    video.replaceWith(Object.assign(document.createElement('div'), { className: 'offline' }));
  });
  hls.loadSource(stream.hlsUrl);
  hls.attachMedia(video);
  p.hls = hls;
  p.video = video;
  video.player = hls;  // for the browser test's latency figure
}

async function loadCameras() {
  let res;
  try { res = await api('GET', '/api/lan/streams'); } catch { return cameraMessage('cameras.offline'); }
  if (res.status === 401) return showLogin();
  const streams = res.data?.streams ?? [];
  if (!streams.length) return cameraMessage('cameras.none');
  const needHls = streams.some((s) => s.ready && !canPlayLive(s, players.get(s.camera) ?? {}));
  if (needHls) {
    try { await loadHlsLibrary(); } catch { return cameraMessage('cameras.offline'); }
  }
  cameraMessage(!needHls || window.Hls?.isSupported() ? null : 'cameras.noplayer');
  for (const s of streams) {
    const p = cameraTile(s);
    if (s.ready) play(s, p);
  }
  for (const [camera, p] of players) {
    if (streams.some((s) => s.camera === camera)) continue;
    p.hls?.destroy();
    p.live?.destroy();
    p.tile.remove();
    players.delete(camera);
  }
}

function stopCameras() {
  clearInterval(camerasTimer);
  for (const p of players.values()) {
    p.hls?.destroy();
    p.live?.destroy();
  }
  players.clear();
  $('camera-wall').replaceChildren();
}

// Hidden: the live views stop (no data for a screen no one sees). Back on
// the tab: they start again at the box's newest keyframe, and HLS jumps to
// its live edge instead of playing what was missed.
function cameraLiveEdge() {
  if (document.visibilityState !== 'visible') {
    for (const p of players.values()) {
      if (!p.live) continue;
      const live = p.live;
      p.live = null;
      live.destroy();
      stopVideo(p);
    }
    return;
  }
  for (const p of players.values()) {
    if (p.hls && p.video && Number.isFinite(p.hls.liveSyncPosition)) p.video.currentTime = p.hls.liveSyncPosition;
    p.video?.play().catch(() => {});
  }
  if (players.size) loadCameras();
}

// -------------------------------------------------------------- alarms --
// The box sends `state` (every alarm it keeps) on each connection, then an
// `alarm` each time one is raised or changes, and a comment every 15 s. No
// byte for 40 s, or the page coming back to the screen after it slept: the
// stream is opened again, and its state catches up with what was missed.

const alarms = new Map();           // id -> alarm, as the box sent it
const answeredHere = new Set();     // answered on this phone, maybe not yet at the box
const snapshots = new Map();        // id -> object URL
let alarmAbort = null;
let alarmLastByte = 0;
let alarmAgainNow = false;  // the stream was ended on purpose: open it again at once
let audio = null;
let beeped = new Set();

function unlockAudio() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    audio.resume();
  } catch { audio = null; }
}

function beep() {
  navigator.vibrate?.([400, 150, 400, 150, 400]);
  if (!audio) return;
  const now = audio.currentTime;
  for (let i = 0; i < 3; i++) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = i % 2 ? 660 : 880;
    gain.gain.setValueAtTime(0.4, now + i * 0.35);
    gain.gain.setValueAtTime(0, now + i * 0.35 + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + i * 0.35);
    osc.stop(now + i * 0.35 + 0.3);
  }
}

const openAlarms = () => [...alarms.values()]
  .filter((a) => !a.answer && !answeredHere.has(a.id))
  .sort((a, b) => b.raisedAt.localeCompare(a.raisedAt));

// Ban photos come from the box (it fetched them from the cloud and keeps
// them): loaded with the session's token, shown from an object URL, so
// that the page loads no image from elsewhere (Content-Security-Policy).
const banPhotos = new Map();  // the box's photo path -> object URL, or a load in flight

function showBanPhoto(img, path) {
  const known = banPhotos.get(path);
  if (typeof known === 'string') {
    img.src = known;
    return;
  }
  img.removeAttribute('src');
  const load = known || (async () => {
    const res = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` } });
    if (!res.ok) throw new Error(String(res.status));
    const url = URL.createObjectURL(await res.blob());
    banPhotos.set(path, url);
    return url;
  })();
  banPhotos.set(path, load);
  load.then((url) => { if (img.isConnected) img.src = url; }, () => banPhotos.delete(path));
}

function forgetBanPhotos() {
  for (const url of banPhotos.values()) if (typeof url === 'string') URL.revokeObjectURL(url);
  banPhotos.clear();
}

async function alarmSnapshot(a) {
  if (!a.hasSnapshot || snapshots.has(a.id)) return;
  snapshots.set(a.id, '');
  try {
    const res = await fetch(`/api/lan/alarms/snapshot?id=${encodeURIComponent(a.id)}`,
                            { headers: { Authorization: `Bearer ${session.token}` } });
    if (!res.ok) return snapshots.delete(a.id);
    snapshots.set(a.id, URL.createObjectURL(await res.blob()));
    renderAlarm();
  } catch { snapshots.delete(a.id); }
}

function renderAlarm() {
  const open = openAlarms();
  const box = $('alarm');
  if (!open.length) {
    box.hidden = true;
    delete box.dataset.alarmId;
    return;
  }
  const a = open[0];
  if (box.dataset.alarmId !== a.id) {
    $('alarm-allow-form').hidden = true;
    $('alarm-allow-reason').value = '';
  }
  box.dataset.alarmId = a.id;
  $('alarm-name').textContent = a.ban.fullName || a.ban.id;
  $('alarm-reason').textContent = a.ban.reason || '';
  const score = Math.round((a.score || 0) * 100);
  $('alarm-read').textContent = a.source === 'face'
    ? t('alarm.face', { score, camera: a.camera })
    : t('alarm.read', { read: a.read, score, camera: a.camera })
      + (a.ban.plate && normPlate(a.ban.plate) !== normPlate(a.read) ? t('alarm.banned', { plate: a.ban.plate }) : '')
      + (a.match === 'misread' ? t('alarm.misread') : '');
  const shot = snapshots.get(a.id);
  $('alarm-snapshot').src = shot || '';
  $('alarm-snapshot').hidden = !shot;
  $('alarm-photo-box').hidden = !a.ban.photo;
  if (a.ban.photo) showBanPhoto($('alarm-photo'), a.ban.photo);
  $('alarm-more').hidden = open.length < 2;
  $('alarm-more').textContent = t('alarm.more', { n: open.length - 1 });
  box.hidden = false;
  if (!beeped.has(a.id)) {
    beeped.add(a.id);
    beep();
  }
  alarmSnapshot(a);
}

let alarmBoot = null;  // the box's feed, as its last state named it

function alarmEvent(name, data) {
  if (name === 'state') {
    // The box restarted (a new boot) and forgot its alarms: the ones nobody
    // answered stay on this phone until a guard does.
    const kept = data.boot !== alarmBoot && alarmBoot !== null
      ? [...alarms.values()].filter((a) => !a.answer && !answeredHere.has(a.id)) : [];
    alarmBoot = data.boot;
    $('alarm').dataset.boot = data.boot;  // which start of the box the phone last heard from
    alarms.clear();
    for (const a of kept) alarms.set(a.id, a);
    for (const a of data.alarms) alarms.set(a.id, a);
    if (data.more) fetchAllAlarms();  // older ones than the catch-up carries
  } else if (name === 'alarm') {
    alarms.set(data.id, data);
    if (data.truncated) wholeAsked.delete(data.id);  // changed: fetched whole again
  }
  for (const a of alarms.values()) if (a.truncated) fetchWholeAlarm(a.id);
  for (const id of answeredHere) if (alarms.get(id)?.answer) answeredHere.delete(id);
  renderAlarm();
}

// The box cuts long texts in what it pushes (a few KiB a message): the whole
// record is fetched by id, and the list when the catch-up left older ones out.
const wholeAsked = new Set();
async function fetchWholeAlarm(id) {
  if (wholeAsked.has(id)) return;
  wholeAsked.add(id);
  try {
    const res = await fetch(`/api/lan/alarms?id=${encodeURIComponent(id)}`,
                            { headers: { Authorization: `Bearer ${session.token}` }, cache: 'no-store' });
    if (!res.ok) return wholeAsked.delete(id);
    const { alarm } = await res.json();
    const now = alarms.get(id);
    if (alarm && (!now || !now.answer || alarm.answer)) alarms.set(id, alarm);
    renderAlarm();
  } catch { wholeAsked.delete(id); }
}
async function fetchAllAlarms() {
  try {
    const res = await fetch('/api/lan/alarms', { headers: { Authorization: `Bearer ${session.token}` }, cache: 'no-store' });
    if (!res.ok) return;
    for (const a of (await res.json()).alarms || []) if (!alarms.has(a.id)) alarms.set(a.id, a);
    renderAlarm();
  } catch { /* the next state catches up */ }
}

// One connection: read blocks until the box or the watchdog ends it.
async function readAlarmStream(signal) {
  const res = await fetch('/api/lan/alarms/stream', { headers: { Authorization: `Bearer ${session.token}`,
                                                                 Accept: 'text/event-stream' },
                                                      cache: 'no-store', signal });
  if (res.status === 401) return 'unauthorized';
  if (!res.ok || !res.body) return 'failed';
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return 'closed';
    alarmLastByte = Date.now();
    text += value;
    let end;
    while ((end = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      let name = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) {
        try { alarmEvent(name, JSON.parse(data)); } catch { /* a bad block: skip it */ }
      }
    }
    if (text.length > 1 << 20) return 'failed';  // no event is that long
  }
}

async function alarmLoop() {
  if (alarmAbort) return;
  let wait = 1000;
  while (session.token) {
    alarmAbort = new AbortController();
    alarmLastByte = Date.now();
    let outcome;
    try { outcome = await readAlarmStream(alarmAbort.signal); } catch { outcome = 'failed'; }
    if (outcome === 'unauthorized') {
      alarmAbort = null;
      return showLogin();
    }
    if (!session.token) break;
    wait = outcome === 'closed' ? 1000 : Math.min(wait * 2, 10000);
    if (alarmAgainNow) wait = 0;
    alarmAgainNow = false;
    await new Promise((r) => setTimeout(r, wait));
  }
  alarmAbort = null;
}

function restartAlarmStream() {
  if (!alarmAbort) return;
  alarmAgainNow = true;
  alarmAbort.abort();
}

function alarmWatchdog() {
  if (Date.now() - alarmLastByte > 40000) restartAlarmStream();
}

function stopAlarms() {
  alarmAbort?.abort();
  alarms.clear();
  renderAlarm();
}

async function answerAlarm(decision, reason) {
  const id = $('alarm').dataset.alarmId;
  if (!id) return;
  answeredHere.add(id);
  renderAlarm();
  const a = alarms.get(id);
  // Should the box no longer know the alarm (it restarted), the answer is
  // recorded as an ordinary entry instead: the guard's decision is never lost.
  const entry = { name: a?.ban.fullName || a?.ban.id || '?', plate: a?.source === 'plate' ? a.read : undefined,
                  decision, reason: reason || undefined };
  await record('/api/lan/alarms/answer', { alarmId: id, decision, reason: reason || undefined, asEntry: entry },
               'alarm.answered');
}

// ------------------------------------------------------------------ UI --

let toastTimer;
function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

function showTab(name) {
  for (const b of document.querySelectorAll('[data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === name));
  for (const tab of ['check', 'guests', 'note', 'cameras']) $(`tab-${tab}`).hidden = tab !== name;
  if (name === 'guests') loadGuests();
  if (name === 'cameras') {
    loadCameras();
    clearInterval(camerasTimer);
    camerasTimer = setInterval(loadCameras, 5000);
  } else {
    stopCameras();
  }
}

function showLogin() {
  stopCameras();
  stopAlarms();
  session.clear();
  forgetCommunityData();  // every way out: a logout, an expired or ended session
  $('statusbar').classList.add('signed-out');
  $('view-app').hidden = true;
  $('view-login').hidden = false;
  loadGuards();
}

// The sign-in screen: a button for each guard who can sign in (the box's
// list), so that a guard taps their name and types only the PIN; an ID can
// still be typed (a guard the box does not list yet, or no list).
let guardTyped = false;
async function loadGuards() {
  let guards = [];
  try {
    const res = await fetch('/api/lan/guards', { headers: { Accept: 'application/json' } });
    if (res.ok) guards = (await res.json()).guards ?? [];
  } catch { /* the box cannot be reached: typing is what is left */ }
  const buttons = $('guard-buttons');
  buttons.replaceChildren(...guards.map((g) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'guard';
    b.textContent = g.displayName;
    b.dataset.guardId = g.id;
    b.setAttribute('aria-pressed', 'false');
    b.onclick = () => {
      for (const other of buttons.children) other.setAttribute('aria-pressed', String(other === b));
      $('guard-id').value = g.id;
      $('pin').focus();
    };
    return b;
  }));
  const pick = guards.length > 0 && !guardTyped;
  $('guard-pick').hidden = guards.length === 0;
  $('guard-id-box').hidden = pick;
  $('guard-type').hidden = !pick;
  if (!pick) $('guard-id').focus();
}

function showApp() {
  $('statusbar').classList.remove('signed-out');
  $('view-login').hidden = true;
  $('view-app').hidden = false;
  $('who').textContent = session.guard?.displayName ?? '';
  showTab('check');
  alarmLoop();
  loadBans();
  refreshStatus();
  flush();
}

async function login(event) {
  event.preventDefault();
  const error = $('login-error');
  error.hidden = true;
  if (!$('guard-id').value.trim()) {
    error.textContent = t('login.choose');
    error.hidden = false;
    return;
  }
  try {
    const res = await api('POST', '/api/lan/login', { guardId: $('guard-id').value.trim(), pin: $('pin').value });
    $('pin').value = '';
    if (res.status === 200) {
      session.save(res.data.token, res.data.guard);
      return showApp();
    }
    error.textContent = res.status === 429 ? t('login.locked', { s: res.headers.get('Retry-After') }) : t('login.wrong');
  } catch {
    error.textContent = t('login.offline');
  }
  error.hidden = false;
}

async function main() {
  applyStrings();
  await outbox.open();
  $('lang').onclick = () => { lang = lang === 'es' ? 'en' : 'es'; localStorage.setItem('lang', lang); applyStrings(); renderStatus(); renderBans();
                      $('ban-count').textContent = t(bans.length === 1 ? 'check.count.one' : 'check.count', { n: bans.length }); $('toast').hidden = true; };
  $('login-form').onsubmit = login;
  $('guard-type').onclick = () => {
    guardTyped = true;
    $('guard-id-box').hidden = false;
    $('guard-type').hidden = true;
    $('guard-id').value = '';
    for (const b of $('guard-buttons').children) b.setAttribute('aria-pressed', 'false');
    $('guard-id').focus();
  };
  $('logout').onclick = async () => {
    try { await api('POST', '/api/lan/logout'); } catch { /* offline */ }
    await forgetCommunityData();
    showLogin();
  };
  for (const b of document.querySelectorAll('[data-tab]')) b.onclick = () => showTab(b.dataset.tab);
  $('search').oninput = renderBans;
  $('search').onkeydown = async (e) => {
    if (e.key !== 'Enter' || !$('search').value.trim()) return;
    // The box's own check records a ban hit for the cloud.
    const q = $('search').value.trim();
    try { await api('POST', '/api/lan/check', /\d/.test(q) ? { plate: q } : { name: q }); } catch { /* offline */ }
  };
  $('walkin-form').onsubmit = async (e) => {
    e.preventDefault();
    const decision = e.submitter?.value === 'denied' ? 'denied' : 'allowed';
    await record('/api/lan/entries', { name: $('walkin-name').value.trim(), plate: $('walkin-plate').value.trim() || undefined, decision }, 'entry.sent');
    $('walkin-form').reset();
  };
  $('note-form').onsubmit = async (e) => {
    e.preventDefault();
    await record('/api/lan/notes', { text: $('note-text').value.trim() }, 'note.sent');
    $('note-form').reset();
  };
  $('alarm-deny').onclick = () => answerAlarm('denied');
  $('alarm-allow').onclick = () => { $('alarm-allow-form').hidden = false; $('alarm-allow-reason').focus(); };
  $('alarm-allow-form').onsubmit = (e) => { e.preventDefault(); answerAlarm('allowed', $('alarm-allow-reason').value.trim()); };
  document.addEventListener('pointerdown', unlockAudio);
  setInterval(alarmWatchdog, 5000);
  window.addEventListener('online', () => { flush(); refreshStatus(); });
  document.addEventListener('visibilitychange', cameraLiveEdge);
  // Back from sleep: a fresh stream, and with it what was missed.
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') restartAlarmStream(); });
  setInterval(() => { refreshStatus(); flush(); }, 10000);
  watchForNewApp();
  if (session.token) showApp(); else showLogin();
}

// Signing out leaves nothing of the community's lists on the phone: the
// service worker's copies of the ban list and the schedule (its data cache)
// go; the app shell stays, and so do entries not yet sent (the outbox).
async function forgetCommunityData() {
  forgetBanPhotos();
  localStorage.removeItem('lastStatus');
  lastStatus = null;
  try {
    if (window.caches) {
      for (const name of await caches.keys()) if (name.startsWith('secbox-data-')) await caches.delete(name);
    }
  } catch { /* no cache on this origin */ }
}

// The app follows the box's version: the worker that serves the shell from
// its cache is checked against the box at every start and when the phone
// comes back to the page (the browser's own check is rare), and once a new
// worker takes over (a box updated or rolled back), the page loads the new
// shell: at once, or when the guard leaves the page if a field is in use.
function watchForNewApp() {
  if (!('serviceWorker' in navigator)) return;
  const hadController = !!navigator.serviceWorker.controller;
  let pending = false;
  const typing = () => {
    const a = document.activeElement;
    return a && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA') && a.value !== '';
  };
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (!hadController) return;  // the first worker: the page is already this app
    if (typing()) pending = true; else location.reload();
  });
  navigator.serviceWorker.register('/sw.js').then((reg) => {
    reg.update().catch(() => {});
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') reg.update().catch(() => {});
      else if (pending) location.reload();
    });
  }).catch(() => { /* untrusted certificate: no offline shell */ });
}

main();
