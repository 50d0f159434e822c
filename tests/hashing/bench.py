"""Per-call cost of the hot-path functions:  PYTHONPATH=. .venv/bin/python tests/hashing/bench.py

Prints microseconds per call (best of 5 runs of N calls). "cold" disables the phone cache, so every call
parses with libphonenumber; "warm" is the same value again (a shopper's second event)."""

from __future__ import annotations

import timeit

import tagpipe.hashing as H

N = 20000


def bench(label: str, fn) -> float:
    best = min(timeit.repeat(fn, number=N, repeat=5)) / N * 1e6
    print(f"{label:58s} {best:7.2f} µs")
    return best


def main() -> None:
    bench("meta_hash('em', ' John.Doe@Example.COM ')", lambda: H.meta_hash("em", " John.Doe@Example.COM "))
    bench("meta_hash('fn', 'Zoë')", lambda: H.meta_hash("fn", "Zoë"))
    bench("meta_hash('ph', '+1 (650) 555-1234')  [SDK path]", lambda: H.meta_hash("ph", "+1 (650) 555-1234"))
    bench("meta_hash('external_id', 'user-42')", lambda: H.meta_hash("external_id", "user-42"))
    bench("google_hash('email', 'J.Doe+x@gmail.com')", lambda: H.google_hash("email", "J.Doe+x@gmail.com"))
    bench("google_hash('first_name', 'Zoë')", lambda: H.google_hash("first_name", "Zoë"))
    bench(
        "google_hash('street', '1600 Amphitheatre Pkwy.')",
        lambda: H.google_hash("street", "1600 Amphitheatre Pkwy."),
    )
    bench("tiktok_hash('email', ' A@B.com ')", lambda: H.tiktok_hash("email", " A@B.com "))
    for label, call in [
        ("google_hash('phone', '(650) 555-1234', US)", lambda: H.google_hash("phone", "(650) 555-1234", default_country="US")),
        ("google_hash('phone', '+44 (0)20 7946 0958')", lambda: H.google_hash("phone", "+44 (0)20 7946 0958")),
        ("meta_hash('ph', '020 7946 0958', GB)", lambda: H.meta_hash("ph", "020 7946 0958", default_country="GB")),
        ("tiktok_hash('phone', '07911 123456', GB)", lambda: H.tiktok_hash("phone", "07911 123456", default_country="GB")),
    ]:  # fmt: skip
        H.set_phone_cache_size(0)
        bench(label + " cold", call)
        H.set_phone_cache_size(4096)
        bench(label + " warm", call)


if __name__ == "__main__":
    main()
