"""The shipped configs load as they are (and with every commented example switched on); the CLI commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tagpipe.config import load_config
from tagpipe.ops.cli import main
from tagpipe.ops.preview import load_samples, secret_env_names

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tagpipe.example.toml"
TOML_LINE = re.compile(r"^# ?(\[|[a-z_]+ = |  \{|\]$)")


@pytest.fixture
def secrets(monkeypatch):
    names = set()
    for path in [EXAMPLE, *(ROOT / "examples").glob("*.toml")]:
        names |= set(secret_env_names(path))
    names |= {"TIKTOK_ACCESS_TOKEN"}
    for name in names:
        monkeypatch.setenv(name, f"test-secret-{name.lower()}")
    return names


def uncommented(text: str) -> str:
    """The example with every commented TOML line from the destinations on switched on."""
    out, on = [], False
    for line in text.splitlines():
        if line.startswith("# ----") and "destinations" in line:
            on = True
        out.append(line[2:] if on and TOML_LINE.match(line) else line)
    return "\n".join(out) + "\n"


def test_example_loads_as_shipped(secrets):
    config = load_config(EXAMPLE)
    assert set(config.destination_entries()) == {"meta", "ga4", "google_ads"}
    tagging = config.tagging()
    assert [t.name for t in tagging.by_destination["meta"]] == ["meta_standard_events"]
    assert not tagging.manages("ga4") and not tagging.manages("google_ads")


def test_example_needs_its_secrets(monkeypatch):
    for name in secret_env_names(EXAMPLE):
        monkeypatch.delenv(name, raising=False)
    config = load_config(EXAMPLE)  # the file is valid without them: secrets are read when a runtime is built
    with pytest.raises(Exception, match="META_ACCESS_TOKEN is not set"):
        config.resolved_entries()


def test_example_with_every_commented_example_switched_on(secrets, tmp_path):
    path = tmp_path / "tagpipe.toml"
    path.write_text(uncommented(EXAMPLE.read_text()))
    config = load_config(path)
    tagging = config.tagging()
    assert set(tagging.tags) == {"meta_standard_events", "meta_high_value_purchase", "meta_add_to_wishlist"}
    assert not tagging.tags["meta_add_to_wishlist"].enabled
    assert [k for k, _ in tagging.tags["meta_standard_events"].params] == [
        "aov_tier", "product_categories", "ab_experiment", "ab_variant"]
    assert [t.name for t in tagging.tags["meta_standard_events"].blocking] == ["internal_traffic"]
    assert "tiktok" in config.destination_entries()


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_examples_load(secrets, path):
    assert load_config(path).tagging().tags


def test_sample_formats(tmp_path):
    [(_, gtag)] = load_samples("v=2&tid=G-X&cid=1.2&en=page_view", now=5.0)
    assert (gtag.source, gtag.query, gtag.received_at, gtag.method) == ("gtag", "v=2&tid=G-X&cid=1.2&en=page_view", 5.0, "GET")
    [(_, url)] = load_samples("https://collect.example.com/g/collect?v=2&en=x")
    assert (url.source, url.path, url.query) == ("gtag", "/g/collect", "v=2&en=x")
    [(_, js)] = load_samples('{"event_name": "purchase"}')
    assert (js.source, js.path, json.loads(js.body)) == ("json", "/events", {"event_name": "purchase"})
    [(_, raw)] = load_samples('{"source": "mp", "query": "measurement_id=G-X", "body": "{}", "_note": "ignored"}')
    assert raw.source == "mp"
    file = tmp_path / "s.json"
    file.write_text('[{"name": "a", "json": {"event_name": "x"}}, {"name": "b", "gtag": "v=2&en=y"}]')
    assert [(n, h.source, h.hit_id) for n, h in load_samples(str(file))] == [("a", "json", "a"), ("b", "gtag", "b")]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_lists_tags(capsys, secrets):
    code, out, _ = run_cli(capsys, "--config", str(ROOT / "examples/meta-custom-data.toml"), "check")
    assert code == 0
    assert "tags for meta: meta_standard_events, meta_high_value_purchase, meta_add_to_wishlist (disabled)" in out


def test_check_reports_a_config_error_with_file_line_key_and_fix(capsys, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[destinations.m]\ntype = "log"\n\n[triggers.purchase]\nevent = "purchase"\n\n'
                    '[tags.high_value]\ndestination = "m"\ntriggers = ["purchse"]\n')
    code, _, err = run_cli(capsys, "--config", str(path), "check")
    assert code == 2
    assert err.strip() == (f"config error: {path}:9: tags.high_value.triggers[0]: unknown trigger 'purchse'. "
                           "Fix: did you mean 'purchase'?")


def test_check_sample_prints_tags_and_masked_payloads(capsys, secrets):
    sample = str(ROOT / "examples/hits/purchase.json")
    code, out, _ = run_cli(capsys, "--config", str(ROOT / "examples/meta-custom-data.toml"), "check", "--sample", sample)
    assert code == 0
    assert "tag meta_high_value_purchase: fired by high_value_purchase" in out
    assert "-> send HighValuePurchase (tag meta_high_value_purchase)" in out
    assert "events?access_token=***" in out and "api_secret=***" in out
    assert '"event_name": "HighValuePurchase"' in out
    assert "test-secret" not in out


def test_preview_uses_placeholders_and_masks_every_secret(capsys, monkeypatch):
    for name in secret_env_names(EXAMPLE):
        monkeypatch.delenv(name, raising=False)
    code, out, _ = run_cli(capsys, "--config", str(EXAMPLE), "preview", str(ROOT / "examples/hits/purchase.json"), "--json")
    assert code == 0
    head, _, body = out.partition("\n{")
    assert "placeholders used for this preview: META_ACCESS_TOKEN" in head
    report = json.loads("{" + body)
    ads = report["hits"][0]["requests"]["google_ads"][0]
    assert ads["headers"] == {"Authorization": "***", "developer-token": "***"}
    assert "preview-placeholder" not in out
    assert [d["event_name"] for d in report["hits"][0]["requests"]["meta"][0]["body"]["data"]] == ["Purchase"]


def test_preview_without_secrets_refuses_with_real_secrets(capsys, monkeypatch):
    monkeypatch.delenv("META_ACCESS_TOKEN", raising=False)
    code, _, err = run_cli(capsys, "--config", str(EXAMPLE), "preview", "v=2&en=x", "--real-secrets")
    assert code == 2 and "META_ACCESS_TOKEN is not set" in err


def test_preview_of_a_hit_that_does_not_parse(capsys, secrets):
    code, out, _ = run_cli(capsys, "--config", str(EXAMPLE), "preview", '{"event_name": ""}')
    assert code == 0 and "rejected at parse: missing_event_name" in out


def test_bad_sample(capsys, secrets):
    code, _, err = run_cli(capsys, "--config", str(EXAMPLE), "preview", "{not json")
    assert code == 2 and err.startswith("sample error: invalid_json")
    code, _, err = run_cli(capsys, "--config", str(EXAMPLE), "preview", "examples/hits/purchse.json")
    assert code == 2 and err.startswith("sample error: sample_not_found: no file 'examples/hits/purchse.json'")
