"""Where alerts go: the log (always), Slack (incoming webhook, Block Kit) and email (SMTP).

Each notifier has a `name` and `send(alert)`, which raises on failure (the evaluator retries it on
the next cycle). Secrets come from the environment: SLACK_WEBHOOK_URL, SMTP_USERNAME, SMTP_PASSWORD
(names configurable in [monitoring.alerts.*]).
"""

from __future__ import annotations

import html
import ipaddress
import logging
import smtplib
import ssl
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from tagpipe.monitoring.alerts import Alert
from tagpipe.monitoring.config import EmailConfig, MonitoringConfig, SlackConfig
from tagpipe.settings import secret

log = logging.getLogger("tagpipe.alerts")


class NotifyError(Exception):
    """A notifier could not deliver an alert (retried on the next cycle)."""


class LogNotifier:
    name = "log"

    def send(self, alert: Alert) -> None:
        level = logging.INFO if alert.status == "resolved" else logging.WARNING
        log.log(level, alert.summary, extra={"alert": alert.key, "alert_status": alert.status,
                                             "severity": alert.severity})


# --------------------------------------------------------------------------- Slack

_ICON = {("firing", "critical"): ":red_circle:", ("firing", "warning"): ":large_orange_circle:"}


def _mrkdwn(text: str) -> str:
    """Slack's escaping for mrkdwn text: &, < and > only."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The incoming-webhook body: `text` (notification fallback) plus Block Kit `blocks`."""
    icon = _ICON.get((alert.status, alert.severity), ":white_check_mark:")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {_mrkdwn(alert.summary)}"[:3000]}},
    ]
    if alert.facts:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{_mrkdwn(label)}*\n{_mrkdwn(value)}"[:2000]} for label, value in alert.facts[:10]
        ]})
    if alert.reasons:
        lines = [f"• {_mrkdwn(r['text'])} `{_mrkdwn(r['code'])}` — {r['count']:,} {_mrkdwn(r['outcome'].replace('_', '-'))}"
                 for r in alert.reasons]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": ("*Why*\n" + "\n".join(lines))[:3000]}})
    if alert.dashboard_url.startswith(("http://", "https://")):
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open the dashboard"},
            "url": alert.dashboard_url, "action_id": "open_dashboard",
        }]})
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(alert.at))
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"tagpipe · rule `{_mrkdwn(alert.rule_id)}` · {alert.severity} · {when}"}
    ]})
    return {"text": alert.title, "blocks": blocks}


class SlackNotifier:
    name = "slack"

    def __init__(self, webhook_url: str, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        self.url = webhook_url
        self.timeout = timeout
        self.client = client

    def send(self, alert: Alert) -> None:
        body = slack_payload(alert)
        try:
            if self.client is not None:
                r = self.client.post(self.url, json=body, timeout=self.timeout)
            else:
                r = httpx.post(self.url, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise NotifyError(f"slack webhook unreachable: {type(exc).__name__}") from None
        if r.status_code != 200:
            raise NotifyError(f"slack webhook answered {r.status_code}: {r.text[:200]}")


# --------------------------------------------------------------------------- email


def email_message(alert: Alert, sender: str, recipients: list[str]) -> EmailMessage:
    msg = EmailMessage()
    label = "RESOLVED" if alert.status == "resolved" else alert.severity.upper()
    title = alert.title.removeprefix("Resolved: ")
    msg["Subject"] = f"[tagpipe] {label}: {title}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(alert.at or time.time(), usegmt=True)
    msg["Message-ID"] = make_msgid(domain="tagpipe.local")
    msg["X-Tagpipe-Alert"] = f"{alert.key} {alert.status}"
    lines = [alert.summary, ""]
    lines += [f"{label_}: {value}" for label_, value in alert.facts]
    if alert.reasons:
        lines += ["", "Why:"] + [f"  - {r['text']} ({r['code']}): {r['count']:,} {r['outcome'].replace('_', '-')}"
                                 for r in alert.reasons]
    if alert.dashboard_url:
        lines += ["", f"Dashboard: {alert.dashboard_url}"]
    lines += ["", f"-- tagpipe alert rule {alert.rule_id}"]
    msg.set_content("\n".join(lines))
    e = html.escape
    colour = {"critical": "#c62828", "warning": "#ef6c00"}.get(alert.severity, "#2e7d32")
    if alert.status == "resolved":
        colour = "#2e7d32"
    rows = "".join(f"<tr><td style='color:#555;padding:2px 12px 2px 0'>{e(k)}</td><td><b>{e(v)}</b></td></tr>"
                   for k, v in alert.facts)
    why = ""
    if alert.reasons:
        why = "<p style='margin:12px 0 4px'><b>Why</b></p><ul>" + "".join(
            f"<li>{e(r['text'])} <code>{e(r['code'])}</code> — {r['count']:,} {e(r['outcome'].replace('_', '-'))}</li>"
            for r in alert.reasons) + "</ul>"
    link = (f"<p><a href='{e(alert.dashboard_url)}' style='background:{colour};color:#fff;padding:8px 14px;"
            f"border-radius:4px;text-decoration:none'>Open the dashboard</a></p>") if alert.dashboard_url else ""
    msg.add_alternative(
        f"<div style='font-family:system-ui,sans-serif;max-width:640px'>"
        f"<div style='border-left:4px solid {colour};padding:4px 12px'><p style='font-size:16px'>{e(alert.summary)}</p></div>"
        f"<table style='margin:12px 0'>{rows}</table>{why}{link}"
        f"<p style='color:#888;font-size:12px'>tagpipe alert rule {e(alert.rule_id)}</p></div>",
        subtype="html",
    )
    return msg


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EmailNotifier:
    name = "email"

    def __init__(self, cfg: EmailConfig, username: str | None = None, password: str | None = None) -> None:
        self.cfg = cfg
        self.username, self.password = username, password

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cfg.ca_file)

    def send(self, alert: Alert) -> None:
        cfg = self.cfg
        msg = email_message(alert, cfg.from_ or "", cfg.to)
        try:
            if cfg.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self._tls())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            with smtp:
                smtp.ehlo()
                encrypted = cfg.ssl
                if not cfg.ssl and cfg.starttls != "never":
                    if smtp.has_extn("starttls"):
                        smtp.starttls(context=self._tls())
                        smtp.ehlo()
                        encrypted = True
                    elif cfg.starttls == "require":
                        raise NotifyError(f"{cfg.host}:{cfg.port} does not offer STARTTLS (email.starttls = require)")
                if self.username:
                    if not encrypted and not _is_loopback(cfg.host or ""):
                        raise NotifyError("refusing to send SMTP credentials without TLS; enable STARTTLS or ssl")
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise NotifyError(f"smtp {cfg.host}:{cfg.port}: {type(exc).__name__}: {exc}") from None


def build_notifiers(cfg: MonitoringConfig, env: Mapping[str, str] | None = None) -> list[Any]:
    """The log, plus Slack when its webhook env var is set, plus email when a host is configured.
    `env`: where the secrets are read (default: the process environment, via tagpipe.settings.secret)."""
    env = {name: value for name in (cfg.alerts.slack.webhook_url_env, cfg.alerts.email.username_env,
                                    cfg.alerts.email.password_env) if name and (value := secret(name, env))}
    notifiers: list[Any] = [LogNotifier()]
    slack: SlackConfig = cfg.alerts.slack
    if slack.enabled and env.get(slack.webhook_url_env):
        notifiers.append(SlackNotifier(env[slack.webhook_url_env], slack.timeout))
    email = cfg.alerts.email
    if email.enabled and email.host:
        notifiers.append(EmailNotifier(email, env.get(email.username_env), env.get(email.password_env)))
    return notifiers
