"""A purchase through the real local stack to a fake Data Manager API (service-account JWT, fail-fast
validation), then `tagpipe request-status` reading Google's asynchronous verdict for it."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from tests.e2e.stack import ROOT, LocalStack, wait_until
from tests.fakes.service_account import service_account_key
from tests.fakes.vendors import FakeVendors

CONFIG = """
[delivery]
min_backoff = 0.05
max_backoff = 0.2
linger_ms = 20

[destinations.google]
type = "data_manager"
operating_account_id = "123-456-7890"
conversion_actions = {{ purchase = "987654321" }}
endpoint = "{endpoint}"
"""

PURCHASE = {
    "event_name": "purchase", "event_id": "T-2001", "page_location": "https://shop.example/thanks?gclid=CjwK-test",
    "transaction_id": "T-2001", "value": 59.0, "currency": "EUR",
    "items": [{"item_id": "SKU-9", "price": 59.0, "quantity": 1}],
    "user_data": {"email": "jane@example.com"},
}  # fmt: skip


def test_a_purchase_reaches_data_manager_and_its_late_error_is_reported(tmp_path):
    with FakeVendors() as fakes:
        fakes.data_manager.mark_fails_later("T-2001", "PROCESSING_ERROR_REASON_DUPLICATE_TRANSACTION_ID")
        env = {"GOOGLE_DATAMANAGER_CREDENTIALS": service_account_key(fakes)}
        with LocalStack(tmp_path / "s", CONFIG.format(endpoint=fakes.url), env) as stack:
            r = httpx.post(f"{stack.url}/events", json=PURCHASE, headers={"user-agent": "Mozilla/5.0"})
            assert r.status_code == 200, r.text
            wait_until(lambda: fakes.data_manager.count >= 1, what="the purchase at the fake Data Manager")
            [event] = fakes.data_manager.events
            assert event["transactionId"] == "T-2001" and event["adIdentifiers"] == {"gclid": "CjwK-test"}
            assert event["userData"]["userIdentifiers"][0]["emailAddress"] != "jane@example.com"  # hashed
            wait_until(lambda: any(o[2:4] == ("google", "delivered") for o in stack.outcomes()), what="the outcome")

            result = subprocess.run([sys.executable, "-m", "tagpipe.ops.cli", "request-status", "google"],
                                    cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 1, result.stderr  # a partial success is worth a non-zero exit
        [status] = json.loads(result.stdout)
        [per_destination] = status["requestStatusPerDestination"]
        assert per_destination["requestStatus"] == "PARTIAL_SUCCESS"
        assert per_destination["errorInfo"]["errorCounts"][0]["reason"] == "PROCESSING_ERROR_REASON_DUPLICATE_TRANSACTION_ID"


GA4_CONFIG = """
[delivery]
min_backoff = 0.05
max_backoff = 0.2
linger_ms = 20

[destinations.analytics]
type = "data_manager"
operating_account_type = "GOOGLE_ANALYTICS_PROPERTY"
operating_account_id = "351234567"
measurement_id = "G-SHOP123"
endpoint = "{endpoint}"
"""


def test_every_event_of_a_visit_reaches_a_ga4_property_through_data_manager(tmp_path):
    visit = [{"event_name": "page_view", "event_id": "pv-1", "client_id": "555.777", "session_id": "1767225000",
              "page_location": "https://shop.example/"},
             {**PURCHASE, "client_id": "555.777", "session_id": "1767225000"}]  # fmt: skip
    with FakeVendors() as fakes:
        env = {"GOOGLE_DATAMANAGER_CREDENTIALS": service_account_key(fakes)}
        with LocalStack(tmp_path / "s", GA4_CONFIG.format(endpoint=fakes.url), env) as stack:
            for body in visit:
                r = httpx.post(f"{stack.url}/events", json=body, headers={"user-agent": "Mozilla/5.0"})
                assert r.status_code == 200, r.text
            wait_until(lambda: fakes.data_manager.count >= 2, what="both events at the fake Data Manager")
            wait_until(lambda: sum(o[2:4] == ("analytics", "delivered") for o in stack.outcomes()) == 2,
                       what="two delivered outcomes")  # fmt: skip
        by_name = {e["eventName"]: e for e in fakes.data_manager.events}
        assert set(by_name) == {"page_view", "purchase"}
        assert {e["clientId"] for e in by_name.values()} == {"555.777"}
        purchase = by_name["purchase"]
        assert (purchase["transactionId"], purchase["currency"], purchase["conversionValue"]) == ("T-2001", "EUR", 59.0)
        assert {"parameterName": "session_id", "value": "1767225000"} in purchase["additionalEventParameters"]
        assert purchase["cartData"]["items"] == [{"itemId": "SKU-9", "unitPrice": 59.0, "quantity": 1}]
