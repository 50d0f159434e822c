"""`make deploy` / `make plan` on macOS's stock bash 3.2: the scripts they run use nothing newer.

Bash 3.2 itself is not on these machines; this session ran tests/terraform/test_deploy_script.py under a bash
3.2 built from source (TAGPIPE_TEST_BASH=/path/to/bash-3.2: the old script failed 4 of its tests there, on
mapfile and an empty array under set -u), and this static check keeps the constructs out in CI. Each rule
names the bash version that brought the construct (bash's own CHANGES/NEWS).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [ROOT / "scripts" / "deploy.sh", ROOT / "scripts" / "package.sh"]  # what make plan/deploy/destroy run

NEWER_THAN_32 = {
    r"\b(mapfile|readarray)\b": "mapfile/readarray (bash 4.0)",
    r"\b(declare|local|typeset)\s+-[a-zA-Z]*A": "associative arrays (bash 4.0)",
    r"\b(declare|local|typeset)\s+-[a-zA-Z]*n\b": "namerefs (bash 4.3)",
    r"\$\{[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?(,,?|\^\^?)\}": "case modification ${x,,} ${x^^} (bash 4.0)",
    r"\$\{[A-Za-z_][A-Za-z0-9_]*@[QEPAaKk]\}": "${x@Q} transformations (bash 4.4)",
    r"&>>": "&>> (bash 4.0)",
    r"\|&": "|& (bash 4.0)",
    r"\bcoproc\b": "coproc (bash 4.0)",
    r"\[\[\s+-v\s": "[[ -v name ]] (bash 4.2)",
    r"\bwait\s+-n\b": "wait -n (bash 4.3)",
    r"\$\{[A-Za-z_][A-Za-z0-9_]*\[-\d+\]\}": "negative array subscripts (bash 4.3)",
    r"\bEPOCH(SECONDS|REALTIME)\b": "$EPOCHSECONDS (bash 5.0)",
}


def code_lines(path: Path) -> list[tuple[int, str]]:
    """The script's lines without comments and without heredoc bodies (package.sh embeds Python)."""
    out, heredoc = [], None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if m := re.search(r"<<-?\s*'?\"?([A-Za-z_]+)'?\"?", line):
            heredoc = m.group(1)
        stripped = re.sub(r"(^|\s)#.*$", "", line)
        if stripped.strip():
            out.append((number, stripped))
    return out


def unguarded_empty_array_uses(lines: list[tuple[int, str]]) -> list[str]:
    """"${a[@]}" of an array the script sets to () somewhere, outside an `if ((${#a[@]}))` block and
    without the ${a[@]+"${a[@]}"} guard: 'unbound variable' under set -u before bash 4.4."""
    empty = {m.group(1) for _, line in lines for m in re.finditer(r"\b([A-Za-z_]\w*)=\(\)", line)}
    found, guards = [], []  # guards: (array, depth of the if that tests its length)
    depth = 0
    for number, line in lines:
        if re.match(r"\s*if\b", line):
            depth += 1
            if m := re.search(r"\(\(\s*\$\{#([A-Za-z_]\w*)\[@\]\}\s*\)\)", line):
                guards.append((m.group(1), depth))
        for m in re.finditer(r'"\$\{([A-Za-z_]\w*)\[@\]\}"', line):
            name = m.group(1)
            guarded = line[max(0, m.start() - len(name) - 8):m.start()].endswith(f"${{{name}[@]+")
            if name in empty and not guarded and not any(g == name for g, _ in guards):
                found.append(f"line {number}: \"${{{name}[@]}}\"")
        if re.match(r"\s*fi\b", line):
            guards = [(g, d) for g, d in guards if d < depth]
            depth -= 1
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_construct_newer_than_bash_3_2(script):
    lines = code_lines(script)
    found = [f"line {n}: {what}" for n, line in lines for pattern, what in NEWER_THAN_32.items()
             if re.search(pattern, line)]  # fmt: skip
    found += unguarded_empty_array_uses(lines)
    assert not found, f"{script.name} would fail on macOS's bash 3.2: {found}"


def test_the_check_finds_what_bash_3_2_refuses(tmp_path):
    script = tmp_path / "old.sh"
    script.write_text('set -u\nA=()\nmapfile -t x < f\nrun "${A[@]}"\nif ((${#A[@]})); then\n  for a in "${A[@]}"; do :; done\nfi\n'
                      'run ${A[@]+"${A[@]}"}\necho "${v,,}"  # comment: mapfile\n')
    lines = code_lines(script)
    assert [n for n, line in lines for p in NEWER_THAN_32 if re.search(p, line)] == [3, 9]
    assert unguarded_empty_array_uses(lines) == ['line 4: "${A[@]}"']  # not 6 (guarded by the if), not 8
