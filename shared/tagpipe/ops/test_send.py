"""`tagpipe test-send <destination>` and the dashboard's "Test" button: one sample event through the
destination's real path (prepare -> credentials -> build_requests -> HTTP -> classify) in the vendor's
test mode, and the vendor's answer: "is my token right, is my pixel id right" at set-up time.

    meta, tiktok    test_event_code (given, or the destination's): the event shows in Test Events only
    ga4             the validation server /debug/mp/collect: validated, nothing recorded
    google_ads      validateOnly: validated, no conversion uploaded
    data_manager    validateOnly: validated, nothing recorded
    webhook, log    sent as configured (the endpoint is your own)
    linkedin, microsoft_ads   no test mode: sent only with live=True (--live), recording a real conversion

The sample carries synthetic data only (an example.com email); secrets are masked in the report.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tagpipe.destinations.base import Destination
from tagpipe.errors import ConfigError, DeliveryError, InvalidInput
from tagpipe.models import (
    Address,
    ClickIds,
    ClientContext,
    Consent,
    DeliveryTask,
    Ecommerce,
    Event,
    Item,
    PageContext,
    UserData,
    new_id,
)
from tagpipe.monitoring import language as lang
from tagpipe.monitoring.redact import scrub_string
from tagpipe.ops.preview import mask_secret_headers, mask_secret_url, scrub_secrets


class SampleNotSent(ValueError):
    """The sample could not be sent at all: the words say what to fix. `needs_live`: it would be sent with
    live=True (a vendor without a test mode)."""

    def __init__(self, message: str, needs_live: bool = False) -> None:
        super().__init__(message)
        self.needs_live = needs_live


def sample_event(name: str, now: float) -> Event:
    uid = new_id()
    return Event(
        event_uid=f"test-send-{uid}:0", hit_id=f"test-send-{uid}", event_id=f"tagpipe-test-{uid[:12]}", name=name,
        timestamp=now, source="json",
        page=PageContext(url="https://tagpipe.test/test-send", title="tagpipe test send"),
        client=ClientContext(client_id="555.1700000000", user_agent="Mozilla/5.0 (tagpipe test-send)",
                             ip="203.0.113.10", session_id="1700000000", engagement_time_msec=100),
        user_data=UserData(email="test-send@example.com", address=Address(country="US", postal_code="94107",
                                                                          first_name="Test", last_name="Send")),
        click_ids=ClickIds(),
        consent=Consent(ad_storage=True, analytics_storage=True, ad_user_data=True, ad_personalization=True),
        ecommerce=Ecommerce(value=1.0, currency="USD", transaction_id=f"tagpipe-test-{uid[:12]}",
                            items=[Item(item_id="TEST-SKU", item_name="test item", price=1.0, quantity=1)]),
    )  # fmt: skip


def _in_test_mode(destination: Destination, test_event_code: str | None, live: bool = False) -> tuple[Destination, str]:
    settings = destination.settings
    if destination.test_mode == "validate_only":
        settings = settings.model_copy(update={"validate_only": True})
        mode = "validation only: the vendor checks the request and records nothing"
        if destination.type == "ga4":  # GA4's validation server checks the payload, not the measurement id or secret
            mode += " (GA4's validation server does not check the api_secret or measurement id)"
    elif destination.test_mode == "test_event_code":
        code = test_event_code or getattr(settings, "test_event_code", None)
        if not code:
            raise SampleNotSent(f"{lang.destination_label(destination.id, destination.type)} needs a test event code "
                                "(Events Manager > Test events, or TikTok Events Manager > Test events): "
                                "pass --test-event-code")  # fmt: skip
        settings = settings.model_copy(update={"test_event_code": code})
        mode = f"test event code {code}: the event shows in Test Events only"
    elif destination.test_mode == "own_endpoint":
        mode = "sent as configured (your own endpoint)"
    elif live:
        mode = "sent live (the vendor has no test mode): it records a real conversion with a tagpipe-test event id"
    else:
        raise SampleNotSent(f"{lang.destination_label(destination.id, destination.type)} has no test mode: a test "
                            "send records a real conversion. Send it anyway with --live (the dashboard's "
                            "'Send live' button), then remove the conversion in the vendor's interface",
                            needs_live=True)  # fmt: skip
    return type(destination)(destination.id, settings, destination.secrets), mode


def _sample_name(destination: Destination) -> str:
    actions = getattr(destination.settings, "conversion_actions", None)
    if actions:
        return "purchase" if "purchase" in actions else next(iter(actions))
    return "purchase"


def send_test_event(runtime: Any, destination_id: str, *, test_event_code: str | None = None, live: bool = False,
                    client: httpx.Client | None = None, now: float | None = None) -> dict[str, Any]:
    """Send the sample; the report (JSON-able, secrets masked): mode, request, response, verdict, words."""
    entries = runtime.entries
    if destination_id not in entries:
        raise SampleNotSent(f"no destination {destination_id!r} in the config (have: {', '.join(sorted(entries))})")
    entry = entries[destination_id]
    configured = runtime.destinations.get(destination_id)
    if configured is None:
        raise SampleNotSent(f"{destination_id} is disabled in the config")
    destination, mode = _in_test_mode(configured, test_event_code, live)
    label = lang.destination_label(destination_id, entry.type)
    event = sample_event(_sample_name(destination), time.time() if now is None else now)
    report: dict[str, Any] = {"destination": destination_id, "label": label, "type": entry.type, "mode": mode,
                              "event": {"name": event.name, "event_id": event.event_id}}  # fmt: skip
    try:
        prepared = destination.prepare(event)
    except InvalidInput as exc:
        return {**report, "ok": False, "verdict": "refused", "reason": exc.code,
                "text": lang.explain_reason(exc.code, exc.message, label)}
    if prepared is None:
        return {**report, "ok": False, "verdict": "not_mapped", "reason": "not_mapped",
                "text": f"{label} does not take a {event.name} event: map it in the config"}
    task = DeliveryTask(event_uid=event.event_uid, hit_id=event.hit_id, event_id=event.event_id,
                        event_name=prepared.event_name, event_time=event.timestamp, destination=destination_id,
                        payload=prepared.payload, identifiers=prepared.identifiers)  # fmt: skip
    secrets = [v for v in destination.secrets.values() if v]
    own_client = client is None
    client = client or httpx.Client(timeout=15.0, headers={"user-agent": "tagpipe/0.1 test-send"})
    try:
        try:
            destination.before_send(client)
            batch = destination.build_requests([task])
        except (DeliveryError, ConfigError) as exc:
            reason = exc.reason if isinstance(exc, DeliveryError) else "config"
            return {**report, "ok": False, "verdict": "credentials", "reason": reason,
                    "text": lang.explain_reason(reason, str(exc), label) or str(exc)}
        if batch.rejected:
            rejection = batch.rejected[0]
            return {**report, "ok": False, "verdict": "refused", "reason": rejection.reason, "text": rejection.detail}
        [request] = batch.requests
        report["request"] = {"method": request.method, "url": mask_secret_url(request.masked_url or request.url),
                             "headers": mask_secret_headers(request.headers or {}), "body": scrub_secrets(request.json, secrets)}  # fmt: skip
        local = destination.send_locally(request)
        if local is not None:
            result, response = local, None
        else:
            response = error = None
            try:
                response = client.request(request.method, request.url, headers=request.headers, json=request.json,
                                          content=request.content, timeout=destination.request_timeout(1))  # fmt: skip
            except httpx.HTTPError as exc:
                error = exc
            result = destination.classify(request, response, error)
    finally:
        if own_client:
            client.close()
    verdict, reason, detail = result.per_event.get(task.event_uid, (result.verdict, result.reason, result.detail))
    report["response"] = None if response is None else {
        "status": response.status_code, "body": scrub_secrets(scrub_string(response.text[:2000]), secrets)}
    ok = verdict.value == "ok"
    text = ("the vendor accepted it" + (f" ({detail})" if detail else "")) if ok else (
        lang.explain_reason(reason, detail, label) or detail)
    return {**report, "ok": ok, "verdict": verdict.value, "reason": reason, "text": text}
