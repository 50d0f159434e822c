/* First-party site tag: page views and dataLayer events to your own endpoint, with an event id the
   browser pixel can reuse for deduplication. No dependencies. Docs: docs/site-tag.md */
(function (w, d) {
  'use strict';
  var s = d.currentScript;
  function opt(n, def) { var v = s && s.getAttribute('data-' + n); return v == null ? def : v; }
  var NS = opt('ns', 'tagpipe');
  if (w[NS] && w[NS].v) return;
  var EP = new URL(opt('endpoint', '%%ENDPOINT%%'), (s && s.src) || location.href).href;
  var DL = opt('datalayer', 'dataLayer');
  var GTAG_EVENTS = opt('gtag-events', '0') === '1';
  var PURPOSES = ['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization'];
  // keys that are fields of their own (the JSON API refuses them in params) or GTM's plumbing
  var SKIP = { value: 1, tax: 1, shipping: 1, currency: 1, transaction_id: 1, coupon: 1, items: 1, event: 1,
    event_id: 1, ecommerce: 1, user_data: 1, user_id: 1, eventCallback: 1, eventTimeout: 1, eventModel: 1,
    page_location: 1, page_referrer: 1, page_title: 1, session_id: 1, client_id: 1, experiments: 1,
    experiment_id: 1, variant_id: 1, debug_mode: 1, test_event_code: 1 };
  var NUMERIC = { price: 1, quantity: 1, discount: 1, index: 1 };
  var USER = ['email', 'phone', 'first_name', 'last_name', 'street', 'city', 'region', 'postal_code', 'country',
    'gender', 'date_of_birth', 'external_id'];
  var consentDefault = {}, consentRegional = {}, consentUpdate = {};
  var OUTBOX = opt('outbox', '1') !== '0' && NS + ':outbox', KEEP = 200, MAX_AGE = 6048e5 - 6e4;
  var queue = [], inflight = [], kaBytes = 0, first = null, timer = 0, retryTimer = 0, failing = 0, parked = false, leaving = false;
  var listeners = [], userData = null;

  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16), h = '';
    if (c && c.getRandomValues) c.getRandomValues(b); else for (var i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    for (var j = 0; j < 16; j++) h += (b[j] + 256).toString(16).slice(1) + ([3, 5, 7, 9].indexOf(j) >= 0 ? '-' : '');
    return h;
  }
  // values stay under the endpoint's 8 KB per value (2,000 UTF-16 units <= 6,000 bytes)
  function scalar(v) {
    var t = typeof v;
    if (t === 'string') return v.slice(0, 2000);
    if (t === 'number') return isFinite(v) ? v : undefined;
    return t === 'boolean' ? v : undefined;
  }
  function num(v) { var n = typeof v === 'string' ? parseFloat(v) : v; return typeof n === 'number' && isFinite(n) ? n : undefined; }
  function str(v, max) { return v == null || typeof v === 'object' ? undefined : String(v).slice(0, max || 2000); }

  function consentState() {
    var out = {}, any = false;
    for (var i = 0; i < PURPOSES.length; i++) {
      var k = PURPOSES[i];
      var v = consentUpdate[k] || consentRegional[k] || consentDefault[k];
      if (v) { out[k] = v; any = true; }
    }
    return any ? out : undefined;
  }
  function applyConsent(kind, c) {
    if (!c || typeof c !== 'object') return;
    for (var i = 0; i < PURPOSES.length; i++) {
      var k = PURPOSES[i], v = c[k];
      if (v !== 'granted' && v !== 'denied') continue;
      if (kind === 'update') consentUpdate[k] = v;
      // a region-scoped default: we cannot know the visitor's region here, so only its denials count
      else if (c.region && c.region.length) { if (v === 'denied') consentRegional[k] = v; }
      else consentDefault[k] = v;
    }
  }

  function build(name, p, id) {
    var e = p.ecommerce && typeof p.ecommerce === 'object' ? p.ecommerce : {};
    function get(k) { return e[k] != null ? e[k] : p[k]; }
    var ev = { event_name: String(name).slice(0, 500), event_id: id, page_location: str(location.href, 8000),
      page_referrer: str(d.referrer, 8000) || undefined, page_title: str(d.title) || undefined, consent: consentState() };
    ['value', 'tax', 'shipping'].forEach(function (k) { var n = num(get(k)); if (n !== undefined) ev[k] = n; });
    var cur = get('currency');
    if (typeof cur === 'string' && /^[A-Za-z]{3}$/.test(cur)) ev.currency = cur;
    if (get('transaction_id') != null) ev.transaction_id = str(get('transaction_id'));
    if (get('coupon') != null) ev.coupon = str(get('coupon'));
    if (p.user_id != null) ev.user_id = str(p.user_id);
    var items = get('items');
    if (items && items.length) {
      ev.items = [];
      for (var i = 0; i < items.length && i < 200; i++) {
        var it = items[i], o = {};
        if (!it || typeof it !== 'object') continue;
        for (var k in it) {
          if (!Object.prototype.hasOwnProperty.call(it, k)) continue;
          var v = NUMERIC[k] ? num(it[k]) : str(it[k]);
          if (v !== undefined) o[k] = k === 'index' ? Math.round(v) : v;
        }
        ev.items.push(o);
      }
    }
    var ud = p.user_data && typeof p.user_data === 'object' ? p.user_data : userData;
    if (ud) {
      var u = {}, has = false;
      USER.forEach(function (k) { var v = str(ud[k]); if (v) { u[k] = v; has = true; } });
      if (has) ev.user_data = u;
    }
    var params = {}, n = 0;
    for (var key in p) {
      if (!Object.prototype.hasOwnProperty.call(p, key) || SKIP[key] || key.indexOf('gtm.') === 0) continue;
      var sv = scalar(p[key]);
      if (sv !== undefined && n++ < 200) params[key] = sv;
    }
    if (n) ev.params = params;
    return ev;
  }

  // At least once, without resending what may have arrived: a batch leaves memory when collect answers
  // it (2xx, or a 4xx refusal collect records as a failed event); 408, 429, 5xx and network errors keep
  // it and retry with backoff, Retry-After honoured. At page exit a healthy endpoint gets the queue by
  // sendBeacon (the browser's to deliver); a failing one gets nothing: the queue is parked in
  // localStorage and the next page of the site claims and sends it, with age_ms so it keeps its time.
  function load() { try { return JSON.parse(w.localStorage.getItem(OUTBOX)) || []; } catch (x) { return []; } }
  function save(list) {
    try {
      if (list.length) w.localStorage.setItem(OUTBOX, JSON.stringify(list.slice(-KEEP)));
      else w.localStorage.removeItem(OUTBOX);
    } catch (x) { /* storage off or full: memory only */ }
  }
  function ids(list) { var o = {}; for (var i = 0; i < list.length; i++) o[list[i].e.event_id] = 1; return o; }
  function fresh(list) {
    var now = Date.now();
    return list.filter(function (x) { return x && x.e && x.e.event_id && now - x.t < MAX_AGE; });
  }
  function body(batch) {
    var now = Date.now();
    for (var i = 0; i < batch.length; i++) batch[i].e.age_ms = Math.max(0, Math.min(now - batch[i].t, MAX_AGE));
    return JSON.stringify(batch.length === 1 ? batch[0].e : batch.map(function (x) { return x.e; }));
  }
  function send(batch) {
    // keepalive lets a request outlive the page; browsers allow 64 KB of such bodies in flight
    var data = body(batch), ka = kaBytes + data.length < 6e4;
    inflight = inflight.concat(batch);
    if (ka) kaBytes += data.length;
    function done(ok, after) {
      if (ka) kaBytes -= data.length;
      inflight = inflight.filter(function (x) { return batch.indexOf(x) < 0; });
      if (ok) {
        failing = 0;
        if (parked) { var sent = ids(batch); save(load().filter(function (x) { return !sent[x.e.event_id]; })); }
        return;
      }
      // the page is going: the browser cancels our view of a keepalive request, not the request
      // (if collect was failing, park() already kept a copy for the next page)
      if (leaving && after === undefined && ka) return;
      failing++;
      queue = batch.filter(function (x) { return !x.gone; }).concat(queue);
      retry(after);
    }
    try {
      return fetch(EP, { method: 'POST', body: data, credentials: 'include', keepalive: ka,
        headers: { 'content-type': 'text/plain' } }).then(function (r) {
        var st = r.status;
        if (st === 408 || st === 429 || st >= 500) done(false, parseFloat(r.headers.get('retry-after')) || 0);
        else done(true);
      }, function () { done(false); });
    } catch (x) { done(false); return null; }
  }
  function retry(after) {
    if (retryTimer) return;
    var wait = Math.min(6e4, 1e3 * Math.pow(2, Math.min(failing, 7) - 1)) * (0.8 + Math.random() * 0.4);
    if (after > 0) wait = Math.max(wait, Math.min(after, 3600) * 1e3);
    retryTimer = setTimeout(function () { retryTimer = 0; flush(); }, wait);
  }
  function beacon(batch) {
    try { return !!(navigator.sendBeacon && navigator.sendBeacon(EP, new Blob([body(batch)], { type: 'text/plain' }))); } catch (x) { return false; }
  }
  function park() {
    var have = load(), there = ids(have);
    var mine = queue.concat(failing ? inflight : []).filter(function (x) { return !x.gone; });
    for (var i = 0; i < mine.length; i++) mine[i].p = 1;
    save(have.concat(mine.filter(function (x) { return !there[x.e.event_id]; })));
    parked = mine.length > 0;
  }
  // back from hidden: take back what no other page claimed meanwhile; what one did is that page's to send
  function unpark() {
    if (!parked) return;
    parked = false;
    var have = load(), there = ids(have), kept = {};
    function claim(x) { if (x.p && !there[x.e.event_id]) { x.gone = 1; return false; } x.p = 0; kept[x.e.event_id] = 1; return true; }
    queue = queue.filter(claim);
    inflight.forEach(claim);
    save(have.filter(function (x) { return !kept[x.e.event_id]; }));
    flush();
  }
  function leave() {
    if ((!failing && !parked) || !OUTBOX) {
      while (queue.length) {
        var b = queue.splice(0, 20);
        if (!beacon(b)) { queue = b.concat(queue); break; }
      }
    }
    if (OUTBOX && (queue.length || (failing && inflight.length))) park();
  }
  // The first request goes alone and is awaited (at most 1.5 s): its response sets the first-party
  // cookies, so later hits carry the same ids instead of each minting new ones.
  function flush(unloading) {
    clearTimeout(timer); timer = 0;
    if (unloading) return leave();
    if (!queue.length || first || parked || retryTimer) return;
    var p = send(queue.splice(0, 20));
    if (first === null) {
      first = Promise.race([p || Promise.resolve(), new Promise(function (r) { setTimeout(r, 1500); })]).then(function () { first = false; flush(); });
    } else if (queue.length) flush();
  }
  function schedule() { if (!timer) timer = setTimeout(flush, 25); }

  function track(name, params) {
    var p = params && typeof params === 'object' ? params : {};
    var id = p.event_id != null && p.event_id !== '' ? String(p.event_id) : uuid();
    api.lastEventId = id;
    queue.push({ e: build(name, p, id), t: Date.now() });
    schedule();
    for (var i = 0; i < listeners.length; i++) { try { listeners[i](name, id, p); } catch (x) { /* a listener's bug is its own */ } }
    return id;
  }

  function handle(o) {
    if (!o || typeof o !== 'object') return;
    if (Object.prototype.toString.call(o) === '[object Arguments]' || Array.isArray(o)) {
      if (o[0] === 'consent' && (o[1] === 'default' || o[1] === 'update')) applyConsent(o[1], o[2]);
      else if (o[0] === 'set' && o[1] === 'user_data' && o[2] && typeof o[2] === 'object') userData = o[2];
      else if (o[0] === 'event' && GTAG_EVENTS && typeof o[1] === 'string') track(o[1], o[2]);
      return;
    }
    var name = o.event;
    if (typeof name !== 'string' || !name || name.indexOf('gtm.') === 0) return;
    // the id goes back into the object, so GTM web tags (the pixel) read the same event_id
    if (o.event_id == null || o.event_id === '') o.event_id = uuid();
    track(name, o);
  }

  var api = w[NS] = {
    v: 1,
    lastEventId: null,
    track: track,
    on: function (fn) { if (typeof fn === 'function') listeners.push(fn); },
    consent: applyConsent,
    flush: function () { flush(true); }
  };

  var dl = w[DL] = w[DL] || [];
  var earlier = dl.slice();
  var push = dl.push;
  dl.push = function () {
    for (var i = 0; i < arguments.length; i++) { try { handle(arguments[i]); } catch (x) { /* never break the page */ } }
    return push.apply(dl, arguments);
  };
  if (OUTBOX) { queue = fresh(load()); save([]); }  // what earlier pages parked: this page sends it
  for (var i = 0; i < earlier.length; i++) if (earlier[i] && earlier[i][0] === 'consent') handle(earlier[i]);
  if (opt('pageview', '1') !== '0') track('page_view');
  for (var j = 0; j < earlier.length; j++) if (!(earlier[j] && earlier[j][0] === 'consent')) handle(earlier[j]);
  if (opt('spa', '0') === '1') {
    var last = location.href;
    var spa = function () { if (location.href !== last) { last = location.href; track('page_view'); } };
    ['pushState', 'replaceState'].forEach(function (m) {
      var orig = history[m];
      history[m] = function () { var r = orig.apply(this, arguments); spa(); return r; };
    });
    w.addEventListener('popstate', spa);
  }
  var bye = function () { flush(true); };
  w.addEventListener('pagehide', function () { leaving = true; bye(); });
  w.addEventListener('pageshow', function () { leaving = false; unpark(); });
  w.addEventListener('online', function () { if (retryTimer) { clearTimeout(retryTimer); retryTimer = 0; flush(); } });
  d.addEventListener('visibilitychange', function () { if (d.visibilityState === 'hidden') bye(); else unpark(); });
})(window, document);
