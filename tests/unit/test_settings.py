"""tagpipe.settings: every environment variable in one model; secrets read when a runtime is built."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tagpipe.config import load_config
from tagpipe.errors import ConfigError
from tagpipe.ops.preview import PLACEHOLDER, placeholder_environ, preview
from tagpipe.runtime import build_runtime
from tagpipe.settings import Settings, variables

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_the_variables_that_override_them():
    assert Settings.load({}) == Settings.load({"UNRELATED": "x"})
    s = Settings.load({})
    assert (s.transport, s.store, s.topic_prefix, s.bq_dataset, s.dedup_ttl_days, s.drain_seconds) == (
        "local", "sqlite", "tagpipe", "tagpipe", 35.0, 25.0)
    s = Settings.load({"TAGPIPE_TRANSPORT": "pubsub", "GOOGLE_CLOUD_PROJECT": "from-gcp", "TAGPIPE_LOG_LEVEL": "debug",
                       "PORT": "9000", "TAGPIPE_PUBSUB_BATCH_MS": "5000", "TAGPIPE_TOPIC_PREFIX": ""})
    assert (s.transport, s.gcp_project, s.log_level, s.port, s.pubsub_batch_ms, s.topic_prefix) == (
        "pubsub", "from-gcp", "DEBUG", 9000, 1000.0, "tagpipe")  # clamped; empty = unset
    both = {"TAGPIPE_GCP_PROJECT": "ours", "GOOGLE_CLOUD_PROJECT": "platform's"}
    assert Settings.load(both).gcp_project == "ours"


@pytest.mark.parametrize(("name", "value"), [
    ("TAGPIPE_TRANSPORT", "kafka"), ("TAGPIPE_DRAIN_SECONDS", "0"), ("TAGPIPE_DRAIN_SECONDS", "7200"),
    ("TAGPIPE_DEDUP_TTL_DAYS", "soon"), ("PORT", "80800"), ("TAGPIPE_LOG_FORMAT", "xml"),
])
def test_a_bad_value_is_a_config_error_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as info:
        Settings.load({name: value})
    assert info.value.key == name and value[:10] in str(info.value)


def test_the_process_environment_is_read_the_same_way(monkeypatch):
    monkeypatch.setenv("TAGPIPE_STORE", "bigquery")
    monkeypatch.setenv("TAGPIPE_DASHBOARD_PORT", "")
    assert Settings.load().store == "bigquery" and Settings.load().dashboard_port is None
    monkeypatch.setenv("TAGPIPE_DASHBOARD_PORT", "eighty")
    with pytest.raises(ConfigError, match="TAGPIPE_DASHBOARD_PORT"):
        Settings.load()


def _environ_reads(path: Path) -> list[int]:
    """Lines that read the process environment: os.environ / os.getenv / os.putenv."""
    tree = ast.parse(path.read_text())
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
            and node.attr in ("environ", "getenv", "putenv", "unsetenv")]


def test_no_module_but_settings_touches_the_environment():
    files = [*(ROOT / "shared" / "tagpipe").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    offenders = {str(f.relative_to(ROOT)): lines for f in files if f.name != "settings.py"
                 and (lines := _environ_reads(f))}
    assert offenders == {}
    assert "TAGPIPE_CONFIG" in variables() and "K_SERVICE" in variables()


CONFIG = """
[storage]
dir = "{dir}"

[destinations.meta]
type = "meta"
pixel_id = "123"
access_token_env = "TP_TEST_META_TOKEN"
"""


def test_secrets_are_read_when_the_runtime_is_built_not_when_the_file_is_loaded(tmp_path, monkeypatch):
    monkeypatch.delenv("TP_TEST_META_TOKEN", raising=False)
    path = tmp_path / "tagpipe.toml"
    path.write_text(CONFIG.format(dir=tmp_path / "data"))
    config = load_config(path)
    assert config.destination_entries()["meta"].secret_vars == {"access_token": "TP_TEST_META_TOKEN"}
    assert config.destination_entries() is config.destination_entries()  # validated once, kept
    with pytest.raises(ConfigError, match="TP_TEST_META_TOKEN is not set") as info:
        build_runtime(config, {})
    assert info.value.source.endswith("tagpipe.toml:8")  # points at the access_token_env line
    rt = build_runtime(config, {}, secrets={"TP_TEST_META_TOKEN": "EAAB-token"})
    try:
        assert rt.destinations["meta"].secrets == {"access_token": "EAAB-token"}
    finally:
        rt.close()


def test_preview_placeholders_never_reach_the_process_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TP_TEST_META_TOKEN", raising=False)
    path = tmp_path / "tagpipe.toml"
    path.write_text(CONFIG.format(dir=tmp_path / "data"))
    config = load_config(path)
    environ = placeholder_environ(config)
    assert environ == {"TP_TEST_META_TOKEN": PLACEHOLDER + "tp_test_meta_token"}
    before = dict(os.environ)
    report = preview(config, [], environ)
    assert report["hits"] == [] and dict(os.environ) == before
    monkeypatch.setenv("TP_TEST_META_TOKEN", "EAAB-real")
    assert placeholder_environ(config) == {"TP_TEST_META_TOKEN": "EAAB-real"}


def test_the_docs_table_lists_every_variable():
    text = (ROOT / "docs" / "gcp.md").read_text()
    table = text[text.index("### Every environment variable"):text.index("### FUNCTION_USE_ASGI")]
    assert [v for v in variables() if f"`{v}`" not in table] == []
