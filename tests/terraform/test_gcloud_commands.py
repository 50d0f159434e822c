"""Every gcloud command the deploy scripts run or tell a user to run, and every one the docs show in a
code block, checked against the installed Google Cloud CLI's own help: the command exists (the longest
prefix of its words that `gcloud ... --help` knows) and each flag it passes is one that command lists
(its own flags or the GCLOUD WIDE FLAGS). A renamed command or flag fails here, not in a user's deploy."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "scripts" / "deploy.sh", ROOT / "scripts" / "package.sh", ROOT / "Makefile"]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
WORD = re.compile(r"^[a-z][a-z0-9-]*$")


def gcloud_bin() -> str:
    found = shutil.which("gcloud")
    if not found:
        if os.environ.get("TAGPIPE_REQUIRE_EMULATORS") == "1":
            pytest.fail("gcloud is required (TAGPIPE_REQUIRE_EMULATORS=1)")
        pytest.skip("the Google Cloud CLI is not installed")
    return found


@functools.cache
def help_text(words: tuple[str, ...]) -> str | None:
    """`gcloud <words> --help`, plain text; None when gcloud has no such command or group."""
    result = subprocess.run([gcloud_bin(), *words, "--help"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "TERM": "dumb"})  # fmt: skip
    if result.returncode != 0:
        return None
    text = ANSI.sub("", result.stdout)
    name = re.search(r"NAME\n\s+gcloud ([a-z0-9 -]+?) -", text)
    return text if name and tuple(name.group(1).split()) == words else None


def joined(text: str) -> str:
    return re.sub(r"\\\n\s*", " ", text)


def invocations_in_script(path: Path) -> list[str]:
    """The text after each `gcloud ` in the script's code and in the commands it prints, up to the end of
    that command: a closing paren, pipe, redirect, semicolon or quote that ends an echoed string."""
    out = []
    for line in joined(path.read_text()).splitlines():
        if line.lstrip().startswith("#") or "command -v gcloud" in line:
            continue
        for m in re.finditer(r"\bgcloud ([^)|;>\n]*)", line):
            if not m.group(1).startswith("not found"):  # the message that gcloud is missing
                out.append(m.group(1))
    return out


def invocations_in_docs(path: Path) -> list[str]:
    """gcloud lines of the docs' code blocks and inline `gcloud ...` spans (tables, prose)."""
    text = path.read_text()
    out = [span for span in re.findall(r"(?<!`)`gcloud ([^`\n]+)`", text)]
    for block in re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", text, re.S):
        for line in joined(block).splitlines():
            line = re.sub(r"\s#.*$", "", line.strip().removeprefix("$ "))
            if line.startswith("gcloud "):
                out.append(line.removeprefix("gcloud ").split("|")[0])
    return out


def check(invocation: str) -> list[str]:
    """Problems of one invocation: an unknown command, or flags its help does not list."""
    tokens = [t.strip("\"'") for t in invocation.split()]
    words: list[str] = []
    for token in tokens:
        if not WORD.match(token):
            break
        words.append(token)
    command = next((tuple(words[:n]) for n in range(len(words), 0, -1) if help_text(tuple(words[:n]))), None)
    text = help_text(command) if command else None
    if text is None or re.search(r"\n(GROUPS|COMMANDS)\n", text):  # unknown, or a group and not a command
        return [f"gcloud {' '.join(words)}: no such command"]
    flags = {t.split("=")[0] for t in tokens if t.startswith("--")}
    return [f"gcloud {' '.join(command)}: {flag} is not one of its flags" for flag in sorted(flags)
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]  # fmt: skip


def all_invocations() -> list[tuple[str, str]]:
    found = [(p.name, i) for p in SOURCES for i in invocations_in_script(p)]
    found += [(p.name, i) for p in DOCS for i in invocations_in_docs(p)]
    return found


def test_the_scripts_and_docs_have_gcloud_commands_to_check():
    names = {where for where, _ in all_invocations()}
    # the extraction works (an empty list would pass everything): the script's and the docs' commands
    assert "deploy.sh" in names and any(name.endswith(".md") for name in names)


@pytest.mark.parametrize("where, invocation", all_invocations(), ids=lambda v: v if "/" not in v else None)
def test_each_gcloud_command_is_one_the_installed_cli_knows(where, invocation):
    assert not check(invocation), (where, invocation)


def test_the_check_refuses_a_wrong_command_and_a_wrong_flag():
    assert check("secrets versions list NAME --project P --format=value(name)") == []
    assert check("secrets versions lists NAME") == ["gcloud secrets versions lists: no such command"]
    assert check("secrets versions add NAME --data-fil=-") == ["gcloud secrets versions add: --data-fil is not one of its flags"]
    assert check("secretz list") == ["gcloud secretz list: no such command"]
