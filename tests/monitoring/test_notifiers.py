"""Alerts delivered for real: a real SMTP server on 127.0.0.1 (aiosmtpd, STARTTLS with a certificate made
here, AUTH) and a fake Slack incoming webhook (a real HTTP server that checks the Block Kit shape)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tagpipe.monitoring.alerts import AlertEvaluator
from tagpipe.monitoring.config import DeliveryFailureRateRule, EmailConfig, MonitoringConfig
from tagpipe.monitoring.notifiers import EmailNotifier, NotifyError, SlackNotifier, build_notifiers
from tests.monitoring.conftest import free_port
from tests.monitoring.scenario import add

# --------------------------------------------------------------------------- a real SMTP server


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tagpipe-test-smtp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Mailbox:
    def __init__(self) -> None:
        self.messages = []  # (envelope, session facts)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "tls": session.ssl is not None, "login": session.auth_data,
                              "message": message_from_bytes(envelope.original_content, policy=policy.default)})
        return "250 Message accepted"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"alerts@shop.example" and auth_data.password == b"s3cret-pass"
    return AuthResult(success=ok, auth_data=auth_data.login.decode() if ok else None)


@pytest.fixture
def smtp_tls(tmp_path):
    cert, key = self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port(), tls_context=ctx, require_starttls=True,
                     authenticator=authenticator, auth_require_tls=True)
    ctl.start()
    yield box, ctl.port, str(cert)
    ctl.stop()


@pytest.fixture
def smtp_plain():
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port())
    ctl.start()
    yield box, ctl.port
    ctl.stop()


def failing_meta(store, now):
    for k in range(1, 29):
        add(store, "meta", "delivered", now - k * 21600, 249)
        add(store, "meta", "dead_lettered", now - k * 21600, 1, "http:503")
    add(store, "meta", "delivered", now - 300, 63)
    add(store, "meta", "dead_lettered", now - 200, 30, "meta:190", detail="access token expired or invalid")
    add(store, "meta", "rejected", now - 200, 7, "meta:event_too_old", detail="event_time too old")


def test_email_over_starttls_with_auth_fires_and_recovers(store, tmp_path, clock, smtp_tls):
    box, port, ca = smtp_tls
    failing_meta(store, clock.t)
    cfg = EmailConfig(host="127.0.0.1", port=port, **{"from": "tagpipe@shop.example"},
                      to=["marketing@shop.example", "ops@shop.example"], ca_file=ca)
    notifier = EmailNotifier(cfg, "alerts@shop.example", "s3cret-pass")
    ev = AlertEvaluator(store, [DeliveryFailureRateRule()], [notifier], tmp_path / "data", clock=clock,
                        destination_types={"meta": "meta"}, dashboard_url="http://127.0.0.1:8081", recovery_minutes=5)
    ev.evaluate()
    ev.evaluate()
    assert len(box.messages) == 1
    got = box.messages[0]
    assert got["tls"] is True and got["login"] == "alerts@shop.example"
    assert got["from"] == "tagpipe@shop.example" and got["to"] == ["marketing@shop.example", "ops@shop.example"]
    msg = got["message"]
    assert msg["Subject"] == "[tagpipe] WARNING: Meta: 37% of purchases failed in the last 15 minutes (was 0.4%)"
    text = msg.get_body(("plain",)).get_content()
    assert ("Meta: 37% of purchases failed in the last 15 minutes (was 0.4%) — the access token expired (meta:190)."
            " Events are being kept and will be replayable.") in text
    assert "Rejected events were refused by Meta one by one" in text
    assert "  - the access token expired (meta:190): 30 dead-lettered" in text
    assert "  - the events were older than Meta accepts (7 days) (meta:event_too_old): 7 rejected" in text
    assert "Dashboard: http://127.0.0.1:8081" in text
    html = msg.get_body(("html",)).get_content()
    assert "Open the dashboard" in html and "<code>meta:190</code>" in html

    clock.advance(minutes=20)
    add(store, "meta", "delivered", clock.t - 30, 100)
    ev.evaluate()
    clock.advance(minutes=5)
    ev.evaluate()
    assert len(box.messages) == 2
    resolved = box.messages[1]["message"]
    assert resolved["Subject"] == "[tagpipe] RESOLVED: Meta: 37% of purchases failed in the last 15 minutes (was 0.4%)"
    assert "Meta: deliveries are back to normal" in resolved.get_body(("plain",)).get_content()


def test_email_without_starttls_when_the_server_offers_none(store, clock, smtp_plain, tmp_path):
    box, port = smtp_plain
    failing_meta(store, clock.t)
    cfg = EmailConfig(host="127.0.0.1", port=port, **{"from": "a@shop.example"}, to=["b@shop.example"])
    ev = AlertEvaluator(store, [DeliveryFailureRateRule()], [EmailNotifier(cfg)], tmp_path / "d", clock=clock)
    ev.evaluate()
    assert len(box.messages) == 1 and box.messages[0]["tls"] is False

    strict = EmailNotifier(cfg.model_copy(update={"starttls": "require"}))
    with pytest.raises(NotifyError, match="does not offer STARTTLS"):
        strict.send(ev.active()[0])


# --------------------------------------------------------------------------- a fake Slack webhook

BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}


def block_kit_problems(body) -> list[str]:
    """What Slack would answer `invalid_blocks` / `invalid_payload` for (api.slack.com/reference/block-kit)."""
    problems = []
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        return ["a top-level `text` fallback is required"]
    blocks = body.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return ["blocks must be a list of 1-50"]
    for i, b in enumerate(blocks):
        kind = b.get("type")
        if kind not in BLOCK_TYPES:
            problems.append(f"block {i}: unknown type {kind!r}")
        elif kind == "header":
            t = b.get("text", {})
            if t.get("type") != "plain_text" or not 0 < len(t.get("text", "")) <= 150:
                problems.append(f"block {i}: header needs plain_text of 1-150 characters")
        elif kind == "section":
            t, fields = b.get("text"), b.get("fields")
            if t is None and fields is None:
                problems.append(f"block {i}: section needs text or fields")
            if t is not None and (t.get("type") not in ("mrkdwn", "plain_text") or not 0 < len(t.get("text", "")) <= 3000):
                problems.append(f"block {i}: section text must be 1-3000 characters")
            if fields is not None and (not 0 < len(fields) <= 10 or any(len(f.get("text", "")) > 2000 for f in fields)):
                problems.append(f"block {i}: 1-10 fields of at most 2000 characters")
        elif kind == "actions":
            for e in b.get("elements", []):
                if e.get("type") != "button" or e.get("text", {}).get("type") != "plain_text" or len(e["text"]["text"]) > 75:
                    problems.append(f"block {i}: buttons need plain_text of at most 75 characters")
                if "url" in e and (len(e["url"]) > 3000 or not e["url"].startswith(("http://", "https://"))):
                    problems.append(f"block {i}: bad button url")
        elif kind == "context":
            els = b.get("elements", [])
            if not 0 < len(els) <= 10 or any(e.get("type") not in ("mrkdwn", "plain_text", "image") for e in els):
                problems.append(f"block {i}: context needs 1-10 text or image elements")
    return problems


class FakeSlack:
    PATH = "/services/T0TAGPIPE/B0ALERTS/fakefakefakefake"

    def __init__(self) -> None:
        self.received = []
        self.fail_next = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path != fake.PATH:
                    return self._answer(404, "no_service")
                if not self.headers.get("content-type", "").startswith("application/json"):
                    return self._answer(400, "invalid_payload")
                if fake.fail_next:
                    fake.fail_next -= 1
                    return self._answer(500, "rollup_error")
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._answer(400, "invalid_payload")
                problems = block_kit_problems(body)
                if problems:
                    fake.received.append({"rejected": problems, "body": body})
                    return self._answer(400, "invalid_blocks")
                fake.received.append({"body": body})
                return self._answer(200, "ok")

            def _answer(self, status, text):
                data = text.encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.PATH}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack():
    with FakeSlack() as s:
        yield s


def test_slack_block_kit_message_fires_once_and_recovers(store, tmp_path, clock, slack, monkeypatch):
    failing_meta(store, clock.t)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
    notifiers = build_notifiers(MonitoringConfig())
    assert [n.name for n in notifiers] == ["log", "slack"]
    ev = AlertEvaluator(store, [DeliveryFailureRateRule()], notifiers, tmp_path / "data", clock=clock,
                        destination_types={"meta": "meta"}, dashboard_url="http://127.0.0.1:8081", recovery_minutes=5)
    slack.fail_next = 1  # Slack hiccups: retried on the next cycle, sent once
    ev.evaluate()
    assert slack.received == []
    clock.advance(minutes=1)
    ev.evaluate()
    clock.advance(minutes=1)
    ev.evaluate()
    assert len(slack.received) == 1 and "rejected" not in slack.received[0], slack.received
    body = slack.received[0]["body"]
    assert body["text"] == "Meta: 37% of purchases failed in the last 15 minutes (was 0.4%)"
    blocks = {b["type"]: b for b in body["blocks"]}
    assert blocks["header"]["text"]["text"] == body["text"]
    assert body["blocks"][1]["text"]["text"].startswith(":large_orange_circle: Meta: 37% of purchases failed")
    fields = [f["text"] for b in body["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
    assert "*Destination*\nMeta" in fields and "*Failed*\n37% (37 of 100)" in fields
    assert "*Usual (7 days)*\n0.4%" in fields
    why = next(b["text"]["text"] for b in body["blocks"] if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("*Why*"))
    assert "• the access token expired `meta:190` — 30 dead-lettered" in why
    assert "• the events were older than Meta accepts (7 days) `meta:event_too_old` — 7 rejected" in why
    assert blocks["actions"]["elements"][0]["url"] == "http://127.0.0.1:8081"

    clock.advance(minutes=20)
    add(store, "meta", "delivered", clock.t - 30, 100)
    ev.evaluate()
    clock.advance(minutes=5)
    ev.evaluate()
    ev.evaluate()
    assert len(slack.received) == 2
    resolved = slack.received[1]["body"]
    assert resolved["text"].startswith("Resolved: Meta: 37% of purchases failed")
    assert resolved["blocks"][1]["text"]["text"].startswith(":white_check_mark: Meta: deliveries are back to normal")


def test_slack_escapes_mrkdwn_and_reports_http_errors(slack):
    from tagpipe.monitoring.alerts import Alert

    alert = Alert(key="k|*", rule_id="k", rule_type="dead_letters", subject="*", status="firing", severity="critical",
                  title="x <y> & z", summary="a <b> & c", facts=[("<k>", "v & w")], dashboard_url="")
    SlackNotifier(slack.url).send(alert)
    body = slack.received[0]["body"]
    assert body["blocks"][1]["text"]["text"] == ":red_circle: a &lt;b&gt; &amp; c"
    assert not any(b["type"] == "actions" for b in body["blocks"])  # no dashboard url, no button
    with pytest.raises(NotifyError, match="404"):
        SlackNotifier(slack.url.replace("fakefake", "wrong")).send(alert)
