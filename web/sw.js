// The guard app's service worker: the app shell from the cache (it opens with
// the box unreachable), the lists and ban photos from the network with the
// last copy kept for when the box cannot answer (dropped at logout). Posts are never cached: the app's outbox
// (IndexedDB) holds them until the box has them.
// scripts/build-web names the shell's cache by its content (this name is
// the unbuilt tree's): a new app is a new cache, and the old one is dropped.
const SHELL = 'secbox-shell-v2';
const DATA = 'secbox-data-v1';
const FILES = ['/', '/app.js', '/style.css', '/manifest.webmanifest', '/icon.svg'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== DATA).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname === '/api/lan/ban-list' || url.pathname === '/api/lan/schedule' ||
      url.pathname === '/api/lan/bans/photo') {
    event.respondWith(fetch(event.request).then((res) => {
      if (res.ok) {
        const copy = res.clone();
        caches.open(DATA).then((c) => c.put(url.pathname + url.search, copy));
      }
      return res;
    }).catch(() => caches.open(DATA).then((c) => c.match(url.pathname + url.search))
      .then((hit) => hit || Response.error())));
    return;
  }
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/hls/') || url.pathname.startsWith('/vendor/') ||
      url.pathname === '/metrics' || url.pathname === '/healthz') return;
  event.respondWith(caches.match(url.pathname === '/index.html' ? '/' : event.request)
    .then((hit) => hit || fetch(event.request)));
});
