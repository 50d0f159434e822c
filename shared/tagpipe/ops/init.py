"""`tagpipe init`: a commented tagpipe.toml from a few answers (or flags), checked, with the site snippet.

    tagpipe init --meta-pixel 1234567890 --ga4 G-XXXXXXX --google-account 123-456-7890 \
                 --google-action purchase=987654321 --collect-url https://collect.shop.example

asks for what is missing when run in a terminal (`--ask` forces the questions, `--no-input` never asks),
writes the file (never over an existing one without --force), loads it back as `tagpipe check` does, and
prints the snippet for the site and the next commands (test sends, `make run`). Secrets are never asked
for: the file names the environment variables that hold them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PIXEL = re.compile(r"\d{5,20}")
MEASUREMENT_ID = re.compile(r"G-[A-Z0-9]{4,20}")
GOOGLE_ACCOUNT = re.compile(r"\d{3}-?\d{3}-?\d{4}")
ACTION_ID = re.compile(r"\d{1,20}")
ACTION_RESOURCE = re.compile(r"customers/\d+/conversionActions/\d+")
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


class InitError(ValueError):
    """An answer that cannot go into the config: the words say which and why."""


@dataclass
class Answers:
    meta_pixel: str | None = None
    meta_token_env: str = "META_ACCESS_TOKEN"
    ga4: str | None = None
    ga4_secret_env: str = "GA4_API_SECRET"
    google_account: str | None = None
    google_actions: dict[str, str] = field(default_factory=dict)  # event name -> conversion action
    collect_url: str = "https://collect.your-shop.example"
    cookie_domain: str = "auto"

    def check(self) -> None:
        if self.meta_pixel and not PIXEL.fullmatch(self.meta_pixel):
            raise InitError(f"Meta pixel id {self.meta_pixel!r}: digits only (Events Manager > Data sources)")
        if self.ga4 and not MEASUREMENT_ID.fullmatch(self.ga4):
            raise InitError(f"GA4 measurement id {self.ga4!r}: G-XXXXXXX (Admin > Data streams), not the stream id")
        if self.google_actions and not self.google_account:
            raise InitError("Google conversion actions need --google-account (the Ads account id, 123-456-7890)")
        if self.google_account and not GOOGLE_ACCOUNT.fullmatch(self.google_account):
            raise InitError(f"Google Ads account {self.google_account!r}: 10 digits, e.g. 123-456-7890")
        kinds = set()
        for name, action in self.google_actions.items():
            if not EVENT_NAME.fullmatch(name):
                raise InitError(f"event name {name!r}: a GA4-style name such as purchase or generate_lead")
            if ACTION_ID.fullmatch(action):
                kinds.add("id")
            elif ACTION_RESOURCE.fullmatch(action):
                kinds.add("resource")
            else:
                raise InitError(f"conversion action {action!r}: its id (digits, for the Data Manager API) or "
                                "customers/<id>/conversionActions/<id> (the Google Ads API)")
        if len(kinds) > 1:
            raise InitError("give every conversion action the same way: all ids (Data Manager API) or all resource names")
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d+)?(/[\w./-]*)?", self.collect_url):
            raise InitError(f"collect URL {self.collect_url!r}: https://collect.your-shop.example")
        if not (self.meta_pixel or self.ga4 or self.google_actions):
            raise InitError("nothing to send to: give at least one of the Meta pixel, the GA4 measurement id or a "
                            "Google conversion action")


def parse_actions(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, action = value.partition("=")
        if not sep:
            raise InitError(f"--google-action {value!r}: event=action, e.g. purchase=987654321")
        out[name.strip()] = action.strip()
    return out


def ask(answers: Answers, prompt: Callable[[str], str]) -> Answers:
    """Ask for what is missing; an empty answer keeps it missing (or its default)."""
    if answers.meta_pixel is None:
        answers.meta_pixel = prompt("Meta pixel / dataset id (empty: no Meta): ").strip() or None
    if answers.ga4 is None:
        answers.ga4 = prompt("GA4 measurement id, G-XXXXXXX (empty: no GA4): ").strip() or None
    if not answers.google_actions:
        raw = prompt("Google conversion actions, event=action id, comma-separated (empty: none): ").strip()
        answers.google_actions = parse_actions([p for p in raw.split(",") if p.strip()]) if raw else {}
        if answers.google_actions and not answers.google_account:
            answers.google_account = prompt("Google Ads account id (123-456-7890): ").strip() or None
    url = prompt(f"collect URL [{answers.collect_url}]: ").strip()
    answers.collect_url = url or answers.collect_url
    return answers


def render_config(a: Answers) -> str:
    """The commented tagpipe.toml."""
    out = [
        "# tagpipe.toml: written by `tagpipe init`. Every key: README.md 'Configure it' and docs/destinations.md.",
        "# Secrets are never in this file: each *_env key names the environment variable that holds one.",
        "",
        "[server]",
        "# cors_origins = [\"https://www.your-shop.example\"]   # the site's origins, for browser hits",
        "",
        "[identity]",
        f'cookie_domain = "{a.cookie_domain}"   # "auto": the registrable domain of the collect host (first-party cookies)',
        "",
        "[delivery]",
        "# dedup = \"all\"   # each event_id is sent once per destination, whatever retries happen (\"conversions\": purchases and the like only)",
        "",
    ]
    if a.meta_pixel:
        out += [
            "[destinations.meta]",
            'type = "meta"',
            f'pixel_id = "{a.meta_pixel}"',
            f'access_token_env = "{a.meta_token_env}"   # a system-user token from Events Manager',
            "# test_event_code = \"TEST12345\"   # while testing: events show in Events Manager > Test events",
            "",
        ]
    if a.ga4:
        out += [
            "[destinations.ga4]",
            'type = "ga4"',
            f'measurement_id = "{a.ga4}"',
            f'api_secret_env = "{a.ga4_secret_env}"   # Admin > Data streams > Measurement Protocol API secrets',
            "",
        ]
    if a.google_actions:
        actions = ", ".join(f'{name} = "{action}"' for name, action in a.google_actions.items())
        if all(ACTION_ID.fullmatch(v) for v in a.google_actions.values()):
            out += [
                "[destinations.google]",
                'type = "data_manager"   # Google\'s Data Manager API',
                f'operating_account_id = "{a.google_account}"',
                f"conversion_actions = {{ {actions} }}",
                '# credentials_env = "GOOGLE_DATAMANAGER_CREDENTIALS"   # a service-account key; on GCP: deliver\'s own account',
                "",
            ]
        else:
            out += [
                "[destinations.google_ads]",
                'type = "google_ads"   # the Google Ads API (OAuth: GOOGLE_ADS_* variables)',
                f'customer_id = "{a.google_account}"',
                f"conversion_actions = {{ {actions} }}",
                'time_zone = "UTC"   # the Ads account\'s time zone',
                "",
            ]
    return "\n".join(out)


def site_snippet(a: Answers) -> str:
    url = a.collect_url.rstrip("/")
    lines = [f'<script async src="{url}/assets/app.js"></script>', "<script>"]
    if a.ga4:
        lines += [f"  // gtag.js users: gtag('config', '{a.ga4}', {{ server_container_url: '{url}' }});"]
    lines += ["  // on the order confirmation page:",
              "  var id = tagpipe.track('purchase', { transaction_id: 'T-1001', value: 42.5, currency: 'EUR' });"]
    if a.meta_pixel:
        lines += ["  fbq('track', 'Purchase', { value: 42.5, currency: 'EUR' }, { eventID: id });  // deduplicated"]
    lines += ["</script>"]
    return "\n".join(lines)


def secret_variables(a: Answers) -> list[str]:
    names = []
    if a.meta_pixel:
        names.append(a.meta_token_env)
    if a.ga4:
        names.append(a.ga4_secret_env)
    if a.google_actions and all(ACTION_ID.fullmatch(v) for v in a.google_actions.values()):
        names.append("GOOGLE_DATAMANAGER_CREDENTIALS (optional on GCP)")
    elif a.google_actions:
        names += ["GOOGLE_ADS_DEVELOPER_TOKEN", "GOOGLE_ADS_CLIENT_ID", "GOOGLE_ADS_CLIENT_SECRET", "GOOGLE_ADS_REFRESH_TOKEN"]
    return names


def run_init(answers: Answers, path: Path, *, force: bool = False, test_sends: bool = False,
             test_event_code: str | None = None, environ: dict[str, str] | None = None, out=None) -> int:
    from tagpipe.config import load_config

    out = out or sys.stdout
    answers.check()
    if path.exists() and not force:
        raise InitError(f"{path} exists: keep it, or run again with --force to replace it")
    text = render_config(answers)
    path.write_text(text)
    config = load_config(str(path))  # what `tagpipe check` loads: a mistake here is ours, shown now
    destinations = ", ".join(f"{d} ({e.type})" for d, e in config.destination_entries().items())
    print(f"wrote {path}: {destinations}", file=out)
    print("\nset these variables (never in the file):", file=out)
    for name in secret_variables(answers):
        print(f"  {name}", file=out)
    failed = 0
    if test_sends:
        from tagpipe.errors import ConfigError
        from tagpipe.ops.test_send import SampleNotSent, send_test_event
        from tagpipe.runtime import Runtime

        print("\ntest sends, in each vendor's test mode:", file=out)
        runtime = Runtime(config, bus=None, store=None, secrets_from=environ)  # type: ignore[arg-type]
        for dest in config.destination_entries():
            try:
                report = send_test_event(runtime, dest, test_event_code=test_event_code)
                line = f"{'OK' if report['ok'] else 'FAILED'} ({report['reason']}): {report['text']}"
                failed += not report["ok"]
            except (SampleNotSent, ConfigError) as exc:  # a secret not set yet: say which, and go on
                line, failed = f"not sent: {exc}", failed + 1
            print(f"  {dest}: {line}", file=out)
    else:
        print("\nthen test each destination in its vendor's test mode (or run init with --test-send):", file=out)
        for dest, entry in config.destination_entries().items():
            extra = " --test-event-code TEST12345" if entry.type in ("meta", "tiktok") else ""
            print(f"  tagpipe --config {path} test-send {dest}{extra}", file=out)
    print(f"\nrun it: TAGPIPE_CONFIG={path} make run   (or deploy: docs/gcp.md)", file=out)
    print("\nand put this on the site (README 'Point your site at it'):\n", file=out)
    print(site_snippet(answers), file=out)
    return 1 if failed else 0
