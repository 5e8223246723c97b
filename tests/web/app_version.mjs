// Which guard app a phone's browser shows: Debian's Chromium with a profile
// kept between runs (its service worker and caches stay, as on a phone) that
// trusts the box's certificate the way a phone trusts its CA (an NSS store
// in a HOME of its own, no ignoreHTTPSErrors: Chromium refuses a service
// worker fetched with any certificate error). It opens the box by a name of
// its certificate (secbox.local, mapped to 127.0.0.1) and waits for the
// app's version to be the wanted one, served by its service worker. Prints
// one JSON line: the version each opening showed at its end, whether the
// worker controlled the page, and what the worker holds. Exit 0 when the wanted version was shown
// under the worker, 1 otherwise. (update_e2e_test runs it around an update
// and a rollback.)
//   node tests/web/app_version.mjs PORT PROFILE_DIR BOX_CERT_PEM WANTED_VERSION
import { launchPhone } from './support.mjs';

const [port, profile, cert, wanted] = process.argv.slice(2);
const context = await launchPhone(profile, cert);
const url = `https://secbox.local:${port}/`;
// As a guard's phone: the app opened once, then left alone (the app checks
// for a new worker itself and loads the new shell when one takes over); the
// version it shows is read every half second for up to 20 s, and the page is
// opened again at most twice if it has not changed by then.
const seen = [];
let controlled = false;
let worker = {};
const current = async (page) => {
  try {
    const v = await page.evaluate(() => document.querySelector('meta[name=secbox-app-version]')?.content || '');
    controlled = await page.evaluate(() => !!(navigator.serviceWorker && navigator.serviceWorker.controller));
    return v;
  } catch {
    return null;  // the page is loading again
  }
};
try {
  const page = context.pages()[0] || await context.newPage();
  for (let open = 0; open < 3; open++) {
    try {
      await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
    } catch (e) {
      seen.push(`error: ${e.message.split('\n')[0]}`);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    let v = null;
    for (let t = 0; t < 40; t++) {
      v = await current(page);
      if (v === wanted && controlled) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    seen.push(v);
    if (v === wanted && controlled) break;
  }
  // What the worker holds, for the record.
  worker = await page.evaluate(async () => {
    const regs = navigator.serviceWorker ? await navigator.serviceWorker.getRegistrations() : [];
    return {
      caches: await caches.keys(),
      registrations: regs.map((r) => ({ active: !!r.active, waiting: !!r.waiting, installing: !!r.installing })),
    };
  }).catch((e) => ({ error: String(e) }));
} finally {
  await context.close();
}
console.log(JSON.stringify({ seen, controlled, worker }));
process.exit(seen[seen.length - 1] === wanted && controlled ? 0 : 1);
