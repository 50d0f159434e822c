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
  var queue = [], first = null, timer = 0, listeners = [], userData = null;

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

  function post(events, beacon) {
    var body = JSON.stringify(events.length === 1 ? events[0] : events);
    if (beacon && navigator.sendBeacon) {
      try { if (navigator.sendBeacon(EP, new Blob([body], { type: 'text/plain' }))) return null; } catch (x) { /* fall through */ }
    }
    try {
      return fetch(EP, { method: 'POST', body: body, credentials: 'include', keepalive: body.length < 60000,
        headers: { 'content-type': 'text/plain' } }).catch(function () {});
    } catch (x) { return null; }
  }
  // The first request goes alone and is awaited (at most 1.5 s): its response sets the first-party
  // cookies, so later hits carry the same ids instead of each minting new ones.
  function flush(unloading) {
    clearTimeout(timer); timer = 0;
    if (!queue.length || (first && !unloading)) return;
    var batch = queue.splice(0, 20);
    if (first === null) {
      var p = post(batch, false) || Promise.resolve();
      first = Promise.race([p, new Promise(function (r) { setTimeout(r, 1500); })]).then(function () { first = false; flush(); });
    } else {
      post(batch, true);
    }
    if (queue.length) flush(unloading);
  }
  function schedule() { if (!timer) timer = setTimeout(flush, 25); }

  function track(name, params) {
    var p = params && typeof params === 'object' ? params : {};
    var id = p.event_id != null && p.event_id !== '' ? String(p.event_id) : uuid();
    api.lastEventId = id;
    queue.push(build(name, p, id));
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
  w.addEventListener('pagehide', bye);
  d.addEventListener('visibilitychange', function () { if (d.visibilityState === 'hidden') bye(); });
})(window, document);
