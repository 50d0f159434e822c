"""`tagpipe init`: answers (flags or questions) -> a commented tagpipe.toml that loads, the site snippet,
the next steps; bad answers refused in words; an existing file kept."""

from __future__ import annotations

import subprocess
import sys

from tagpipe.config import load_config
from tagpipe.ops.cli import main
from tests.e2e.stack import ROOT

FLAGS = ["--meta-pixel", "1234567890", "--ga4", "G-TEST123", "--google-account", "123-456-7890",
         "--google-action", "purchase=987654321", "--google-action", "generate_lead=987654322",
         "--collect-url", "https://collect.shop.example", "--no-input"]  # fmt: skip


def test_flags_write_a_config_that_loads_and_print_the_snippet(tmp_path, capsys):
    path = tmp_path / "tagpipe.toml"
    assert main(["init", "--output", str(path), *FLAGS]) == 0
    config = load_config(str(path))
    entries = config.destination_entries()
    assert {d: e.type for d, e in entries.items()} == {"meta": "meta", "ga4": "ga4", "google": "data_manager"}
    assert entries["google"].settings.conversion_actions == {"purchase": "987654321", "generate_lead": "987654322"}
    text = path.read_text()
    assert text.count("\n#") >= 3 and 'access_token_env = "META_ACCESS_TOKEN"' in text
    assert "access_token =" not in text and "api_secret =" not in text  # variable names only, never secrets
    out = capsys.readouterr().out
    assert '<script async src="https://collect.shop.example/assets/app.js"></script>' in out
    assert "eventID: id" in out and "test-send meta --test-event-code" in out and "META_ACCESS_TOKEN" in out


def test_an_existing_file_is_kept_and_bad_answers_are_named(tmp_path, capsys):
    path = tmp_path / "tagpipe.toml"
    path.write_text("# mine\n")
    assert main(["init", "--output", str(path), *FLAGS]) == 2
    assert path.read_text() == "# mine\n" and "--force" in capsys.readouterr().err
    assert main(["init", "--output", str(path), "--force", *FLAGS]) == 0 and "[destinations.meta]" in path.read_text()
    for bad, words in ((["--ga4", "123456"], "G-XXXXXXX"), (["--meta-pixel", "px-1"], "digits only"),
                       (["--google-action", "purchase=987"], "need --google-account"),
                       (["--no-input"], "nothing to send to")):  # fmt: skip
        assert main(["init", "--output", str(tmp_path / "x.toml"), "--no-input", *bad]) == 2
        assert words in capsys.readouterr().err
    assert not (tmp_path / "x.toml").exists()


def test_questions_on_the_input(tmp_path):
    answers = "1234567890\nG-TEST123\npurchase=customers/1234567890/conversionActions/42\n123-456-7890\n\n"
    result = subprocess.run([sys.executable, "-m", "tagpipe.ops.cli", "init", "--ask", "--output", str(tmp_path / "t.toml")],
                            input=answers, capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    types = {d: e.type for d, e in load_config(str(tmp_path / "t.toml")).destination_entries().items()}
    assert types == {"meta": "meta", "ga4": "ga4", "google_ads": "google_ads"}
    assert "https://collect.your-shop.example/assets/app.js" in result.stdout  # the default URL kept


def test_test_sends_without_secrets_say_which_variable_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("META_ACCESS_TOKEN", raising=False)
    path = tmp_path / "tagpipe.toml"
    assert main(["init", "--output", str(path), "--meta-pixel", "1234567890", "--no-input", "--test-send",
                 "--test-event-code", "TEST1"]) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert "meta: not sent" in out and "META_ACCESS_TOKEN is not set" in out
