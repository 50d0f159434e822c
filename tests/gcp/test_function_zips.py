"""The Cloud Functions source zips, built and started the way Cloud Functions' Python buildpack does it.

scripts/package.sh builds them; each is unpacked into a workspace of its own, its requirements.txt is
installed into a clean venv with `pip install -r` (no project checkout on the path), and the bare
`functions-framework` command starts the entry point configured by the environment Terraform sets
(terraform/modules/functions: FUNCTION_TARGET/SOURCE by the buildpack, local.env by us). collect then
takes a hit and publishes it to the Pub/Sub emulator; transform and deliver answer a push. A zip that
lacks a module, a dependency its code imports, or the config would fail here as it would on deploy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from tagpipe.config import load_config
from tagpipe.storage.bigquery import record_topic
from tests.gcp.conftest import free_port, pull_until, wait_for_port
from tests.terraform.hcl import parse

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_TF = ROOT / "terraform" / "modules" / "functions" / "main.tf"


def runtime_python() -> str:
    """The interpreter of the runtime Terraform deploys (python_runtime, e.g. python312), else this one."""
    default = re.search(r'python_runtime\s*=\s*optional\(string,\s*"python(\d)(\d+)"', (ROOT / "terraform" / "variables.tf").read_text())
    assert default, "terraform/variables.tf no longer sets a python_runtime default"
    version = f"{default.group(1)}.{default.group(2)}"
    candidates = [*sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python")), shutil.which(f"python{version}")]
    for candidate in filter(None, candidates):
        if subprocess.run([str(candidate), "--version"], capture_output=True, timeout=30).returncode == 0:
            return str(candidate)  # a pyenv shim of a version not selected fails here
    return sys.executable


def terraform_env(values: dict[str, str]) -> dict[str, str]:
    """local.env of the functions module, its var.* references filled in from `values`."""
    env = {}
    for key, value in parse(FUNCTIONS_TF)["locals"][0]["env"].items():
        if m := re.fullmatch(r"\$\{(?:tostring\()?var\.(\w+)\)?\}", value):
            value = values[m.group(1)]
        env[key] = value
    return env


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    """{function: unpacked zip folder}, and the clean venv its requirements went into."""
    tmp = tmp_path_factory.mktemp("zips")
    env = {**os.environ, "TAGPIPE_CONFIG_FILE": str(ROOT / "tagpipe.example.toml")}
    subprocess.run([str(ROOT / "scripts" / "package.sh"), str(tmp / "dist")], check=True, env=env, timeout=120,
                   capture_output=True)  # fmt: skip
    folders = {}
    for function in ("collect", "transform", "deliver"):
        folder = folders[function] = tmp / function
        with zipfile.ZipFile(tmp / "dist" / f"{function}.zip") as zf:
            zf.extractall(folder)
    python = runtime_python()
    env_dir = tmp / "venv"
    if python == sys.executable:
        venv.create(env_dir, with_pip=True)
    else:
        subprocess.run([python, "-m", "venv", str(env_dir)], check=True, timeout=120)
    requirements = {(folders[f] / "requirements.txt").read_text() for f in folders}
    assert len(requirements) == 1, "the zips disagree on requirements.txt"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              "-r", str(folders["collect"] / "requirements.txt")],
                             capture_output=True, text=True, timeout=900, env=clean)  # fmt: skip
    assert install.returncode == 0, f"pip install -r requirements.txt failed:\n{install.stderr[-3000:]}"
    return folders, env_dir / "bin" / "python"


def start(function: str, workspaces, emulators: dict[str, str], project: str, tmp_path) -> tuple[subprocess.Popen, int]:
    folders, python = workspaces
    port = free_port()
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "PORT": str(port), "HOST": "127.0.0.1",
        "FUNCTION_TARGET": function, "FUNCTION_SOURCE": str(folders[function] / "main.py"),
        "FUNCTION_SIGNATURE_TYPE": "http", **emulators,
        **terraform_env({"project_id": project, "prefix": "tagpipe", "dataset_id": "tagpipe",
                         "firestore_database": "tagpipe-keys", "dedup_ttl_days": "7"}),
    }  # fmt: skip
    env["TAGPIPE_CONFIG"] = str(folders[function] / "tagpipe.toml")  # the buildpack's /workspace is this folder
    env["TAGPIPE_PUBSUB_BATCH_MS"] = "0"
    for variable in load_config(folders[function] / "tagpipe.toml").secret_variables():
        env.setdefault(variable, "test-secret")  # each destination's secret, as Secret Manager mounts them
    log = open(tmp_path / f"{function}.log", "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen([str(python), "-m", "functions_framework"], cwd=folders[function], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_for_port(port, proc, function, timeout=60)
    except RuntimeError:
        proc.kill()
        raise AssertionError((tmp_path / f"{function}.log").read_text()[-3000:]) from None
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def emulators(pubsub_emulator, firestore_emulator) -> dict[str, str]:
    return {"PUBSUB_EMULATOR_HOST": pubsub_emulator.host, "FIRESTORE_EMULATOR_HOST": firestore_emulator.host}


def test_the_collect_zip_installs_starts_and_publishes_a_hit(workspaces, bus, emulators, project, tmp_path):
    # the store's record topics; Terraform's BigQuery subscriptions read them, here pull ones do
    tables = [p.stem for p in (ROOT / "shared" / "tagpipe" / "storage" / "bigquery_schemas" / "tables").glob("*.json")]
    bus.ensure_topology(extra_topics=[record_topic(t) for t in tables])
    for table in ("failed_events", "outcomes"):
        bus.subscriber().create_subscription(request={"name": bus.subscription_path(f"{table}-records"),
                                                      "topic": bus.topic_path(record_topic(table))})  # fmt: skip
    proc, port = start("collect", workspaces, emulators, project, tmp_path)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/events", json={"event_name": "page_view", "event_id": "zip-1",
                                                                "page_location": "https://shop.example/"},
                       headers={"user-agent": "Mozilla/5.0"}, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        bad = httpx.post(f"http://127.0.0.1:{port}/events", content=b"{not json", timeout=30,
                         headers={"content-type": "application/json", "user-agent": "Mozilla/5.0"})  # fmt: skip
        assert bad.status_code == 400 and bad.json()["error"]
    finally:
        stop(proc)
    [message] = pull_until(bus, "transform", 1)
    assert b"zip-1" in message.data  # the good hit; the bad one was refused, not published...
    [record] = pull_until(bus, "failed_events-records", 1)
    assert b"invalid_json" in record.data  # ...and recorded as a failed event, with its one outcome
    [outcome] = pull_until(bus, "outcomes-records", 1)
    assert b"rejected" in outcome.data
    assert "could not record" not in (tmp_path / "collect.log").read_text()


@pytest.mark.parametrize("function", ["transform", "deliver"])
def test_the_stage_zips_install_start_and_answer_a_push(function, workspaces, bus, emulators, project, tmp_path):
    proc, port = start(function, workspaces, emulators, project, tmp_path)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/", json={"not": "a push envelope"}, timeout=30)
    finally:
        stop(proc)
    log = (tmp_path / f"{function}.log").read_text()
    assert "Traceback" not in log and "ModuleNotFoundError" not in log, log[-3000:]
    assert 400 <= r.status_code < 500, (r.status_code, r.text)  # the handler ran and refused the body
