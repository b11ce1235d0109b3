// The service worker: it keeps the app's files so the app starts and works
// with no network after the first visit. The files are served from the
// cache first; the cache is named for the build, so a new build replaces
// it. Calls to the server (Connect) are never cached or answered here.

declare const __VERSION__: string;
declare const __SHELL__: string[];

const sw = self as unknown as ServiceWorkerGlobalScope;

const CACHE = "doorstep-app-" + __VERSION__;
const SHELL = ["./", ...__SHELL__.map((f) => "./" + f), "./sw.js"];

sw.addEventListener("install", (ev: ExtendableEvent) => {
  ev.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener("activate", (ev: ExtendableEvent) => {
  ev.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("doorstep-app-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener("fetch", (ev: FetchEvent) => {
  const req = ev.request;
  const url = new URL(req.url);
  const scope = new URL(sw.registration.scope);
  if (req.method !== "GET" || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  ev.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      // Every page of the app is the one page; the hash picks the screen.
      const key = req.mode === "navigate" ? "./" : req;
      const hit = await cache.match(key, { ignoreSearch: req.mode === "navigate" });
      if (hit) return hit;
      return fetch(req);
    })(),
  );
});

// Background sync: when the browser says the network is back, ask an open
// page to sync (the page holds the sync; the outbox is in IndexedDB).
sw.addEventListener("sync", (ev: Event) => {
  const e = ev as ExtendableEvent & { tag?: string };
  e.waitUntil(
    sw.clients.matchAll({ type: "window" }).then((cs) => {
      for (const c of cs) c.postMessage({ type: "sync" });
    }),
  );
});
