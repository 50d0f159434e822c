"""`python -m benchmarks.hit_context`: per-hit cost of parsing a gtag hit and planning its cookies
(timeit, best of 5 x 20,000 calls). Issue 16 added the client-IP choice and Meta's cookie appendix here."""

import timeit
from tagpipe.models import RawHit
from tagpipe.parsing import parse_hit
from tagpipe.identity import plan_cookies, IdentityConfig
from tagpipe.models import Consent
q = "v=2&tid=G-X&cid=1.2&en=page_view&dl=https%3A%2F%2Fshop.example%2F%3Ffbclid%3DIwAR1&gcs=G111"
raw = RawHit(source="gtag", method="GET", path="/g/collect", query=q, client_ip="203.0.113.9",
             headers={"user-agent": "Mozilla/5.0"}, cookies={"_fbp": "fb.1.1700000000000.123", "_ga": "GA1.1.1.2"})
cfg = IdentityConfig(); c = Consent(ad_storage=True, analytics_storage=True)
n = 20000
for name, fn in (("parse_hit gtag", lambda: parse_hit(raw)),
                 ("plan_cookies", lambda: plan_cookies(cfg, host="collect.shop.example", cookies=raw.cookies, consent=c,
                                                       page_url="https://shop.example/?fbclid=IwAR1"))):
    best = min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6
    print(f"{name}: {best:.2f} us")
