// Siaga residents' page: network first (5 s), else the last copy kept; the page says its age.
const CACHE = "siaga-public-v1";
self.addEventListener("install", (event) => { self.skipWaiting(); });
self.addEventListener("activate", (event) => { event.waitUntil(self.clients.claim()); });
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await Promise.race([
        fetch(request),
        new Promise((_, reject) => setTimeout(() => reject(new Error("slow")), 5000)),
      ]);
      if (response.ok) await cache.put(request, response.clone());
      return response;
    } catch (error) {
      const kept = await cache.match(request);
      const type = kept ? kept.headers.get("Content-Type") || "" : "";
      if (kept && type.startsWith("text/html")) {
        // Served from the phone's copy: the page then says so, with the time it was made.
        const text = (await kept.text()).replace("<body ", '<body data-offline="1" ');
        return new Response(text, {status: 200, headers: {"Content-Type": type}});
      }
      if (kept) return kept;
      return new Response("<!doctype html><meta charset=utf-8><title>Luring</title><p>Tidak ada sinyal dan belum ada data tersimpan. Coba lagi nanti.</p>",
        {status: 503, headers: {"Content-Type": "text/html; charset=utf-8"}});
    }
  })());
});
