"""Item 12 of issue 14: the dashboard answers only to its own names (a DNS-rebinding page reaches
127.0.0.1 with its own Host), and the debug view masks credentials whole, not to a 6-character prefix."""

from __future__ import annotations

import pytest

from tagpipe.monitoring.config import DashboardConfig, MonitoringConfig
from tagpipe.monitoring.dashboard import DashboardServer, create_dashboard_app
from tagpipe.monitoring.redact import body_for_display, for_display, query_for_display, raw_hit_for_display
from tagpipe.storage.sqlite import SqliteStore
from tests.security.raw import send


@pytest.fixture
def dashboard(tmp_path):
    store = SqliteStore(tmp_path)
    cfg = MonitoringConfig(dashboard=DashboardConfig(allowed_hosts=["dash.shop.example"]))
    server = DashboardServer(create_dashboard_app(store=store, state_dir=tmp_path, monitoring=cfg, token=""),
                             "127.0.0.1", 0, False)
    assert server.start()
    yield server
    server.close()
    store.close()


def _get(port: int, host: str):
    return send(port, "GET", "/api/summary?window=1h", [("Host", host)], host_header=False)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8081", "127.0.0.1.evil.example", "localhost.evil"])
def test_a_rebound_host_name_is_refused(dashboard, host):
    r = _get(dashboard.port, host)
    assert r.status == 421 and r.json()["error"] == "misdirected_request"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:8081", "[::1]:8081", "dash.shop.example"])
def test_its_own_names_are_answered(dashboard, host):
    assert _get(dashboard.port, host).status == 200


SECRET = "abcdef0123456789"


def test_credentials_are_masked_whole_in_the_debug_view():
    shown = for_display({"api_secret": SECRET, "access_token": SECRET, "params": {"token": SECRET}})
    assert SECRET[:6] not in repr(shown)
    assert query_for_display(f"measurement_id=G-X&api_secret={SECRET}") == [["measurement_id", "G-X"],
                                                                           ["api_secret", "***"]]
    assert SECRET[:6] not in repr(body_for_display(f'{{"url": "https://graph.facebook.com/?access_token={SECRET}"}}'))
    doc = {"query": f"api_secret={SECRET}", "body": "", "headers": {"authorization": f"Bearer {SECRET}"}}
    assert SECRET[:6] not in repr(raw_hit_for_display(doc))
