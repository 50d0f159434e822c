"""stage_trigger = "push" | "schedule" and the per-destination deliveries topics and subscriptions.

The pubsub and scheduler modules' locals are rendered by terraform itself (locals and variables need
no provider) for both modes, so what is checked is what Terraform computes, and it is compared with
the Python topology (tagpipe.transport.base.per_destination). The resources are read from the HCL.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tagpipe.transport.base import DEAD_LETTER, RAW_HITS, TOPOLOGY, destination_topic, per_destination
from tests.terraform.hcl import TF, block, modules
from tests.tools import missing

DESTINATIONS = ["meta", "ga4", "tiktok"]
RECORDS = {"records-outcomes": "p.ds.outcomes", "records-events": "p.ds.events"}


def _locals_block(path: Path) -> str:
    src = path.read_text()
    start = src.index("\nlocals {") + 1
    return src[start:src.index("\n}\n", start) + 3]


def render(tmp: Path, module: str, tfvars: str, names: list[str]) -> dict:
    """Apply the module's locals + variables (no provider) and return the named locals."""
    src = TF / "modules" / module
    outputs = "".join(f'output "{n}" {{\n  value = local.{n}\n}}\n' for n in names)
    return apply_locals(tmp, _locals_block(src / "main.tf") + "\n" + outputs, src / "variables.tf", tfvars)


def apply_locals(tmp: Path, main_tf: str, variables_tf: Path, tfvars: str) -> dict:
    """`terraform apply` of locals and outputs only (no provider is needed), then the outputs' values."""
    terraform = shutil.which("terraform")
    if terraform is None:
        missing("terraform", "terraform not installed: the locals are not rendered")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "main.tf").write_text(main_tf)
    shutil.copy(variables_tf, tmp / "variables.tf")
    (tmp / "terraform.tfvars").write_text(tfvars)
    env = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "PATH": str(Path(terraform).parent)}
    for args in (["init", "-input=false", "-no-color"], ["apply", "-auto-approve", "-input=false", "-no-color"]):
        result = subprocess.run([terraform, *args], cwd=tmp, capture_output=True, text=True, timeout=120, env=env)
        if result.returncode != 0:
            raise RenderError(result.stdout[-3000:] + result.stderr[-3000:])
    out = subprocess.run([terraform, "output", "-json"], cwd=tmp, capture_output=True, text=True, timeout=60, env=env)
    return {k: v["value"] for k, v in json.loads(out.stdout).items()}


class RenderError(AssertionError):
    pass


def pubsub_vars(trigger: str, destinations: list[str] = DESTINATIONS, archive: bool = True) -> str:
    endpoints = {"transform": "https://t.run.app", "deliver": "https://d.run.app"}
    if archive:
        endpoints["dead-letter-archive"] = "https://a.run.app"
    return "\n".join([
        'project_id = "my-project"', 'prefix = "tp"',
        'pubsub_service_agent = "service-1@gcp-sa-pubsub.iam.gserviceaccount.com"',
        f"push_endpoints = {json.dumps(endpoints)}".replace('":', '" =').replace('{"', '{ "'),
        'invoker_service_account = "tp-push-invoker@my-project.iam.gserviceaccount.com"',
        "delivery = { max_delivery_attempts = 10, min_backoff_seconds = 10, max_backoff_seconds = 600 }",
        "record_tables = {" + ", ".join(f'"{k}" = "{v}"' for k, v in RECORDS.items()) + "}",
        'dead_letter_table = "p.ds.dead_letters"',
        f'trigger = "{trigger}"', f"destinations = {json.dumps(destinations)}",
        'publishers = { "deliveries" = ["serviceAccount:transform@p"], "raw-hits" = ["serviceAccount:collect@p"] }', "",
    ])


NAMES = ["feeds", "push", "pull", "dead_lettering", "topics", "publisher_grants"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = {}
    for trigger in ("push", "schedule"):
        out[trigger] = render(tmp_path_factory.mktemp(f"pubsub-{trigger}"), "pubsub", pubsub_vars(trigger), NAMES)
    return out


def test_push_mode_pushes_every_stage_subscription(rendered):
    r = rendered["push"]
    assert set(r["push"]) == {"transform", "deliver-meta", "deliver-ga4", "deliver-tiktok", "dead-letter-archive"}
    assert r["pull"] == {}


def test_schedule_mode_pulls_the_stages_and_still_pushes_the_archive(rendered):
    r = rendered["schedule"]
    assert set(r["pull"]) == {"transform", "deliver-meta", "deliver-ga4", "deliver-tiktok"}
    assert set(r["push"]) == {"dead-letter-archive"}  # the archive function has no drain: it stays push
    assert set(r["feeds"]) == set(rendered["push"]["feeds"])  # same subscriptions, only their delivery differs


@pytest.mark.parametrize("trigger", ["push", "schedule"])
def test_subscriptions_mirror_the_python_topology(rendered, trigger):
    feeds = rendered[trigger]["feeds"]
    python = per_destination(TOPOLOGY, DESTINATIONS)
    assert set(feeds) == set(python)
    for name, sub in python.items():
        assert feeds[name]["topic"] == sub.topic, name
    for dest in DESTINATIONS:
        assert feeds[f"deliver-{dest}"] == {"topic": destination_topic(dest), "stage": "deliver"}
    assert feeds["transform"] == {"topic": RAW_HITS, "stage": "transform"}


def test_each_destination_has_a_topic_of_its_own_and_transform_may_publish_to_each(rendered):
    """No shared deliveries topic with filtered subscriptions: Pub/Sub would bill every subscription
    for the tasks its filter drops."""
    r = rendered["schedule"]
    assert set(r["topics"]) == {RAW_HITS, DEAD_LETTER, *RECORDS, *(destination_topic(d) for d in DESTINATIONS)}
    # every topic has a subscription that takes its messages (records: BigQuery; dead-letter: the archive)
    assert {f["topic"] for f in r["feeds"].values()} | set(RECORDS) | {DEAD_LETTER} == set(r["topics"])
    grants = {(g["topic"], g["member"]) for g in r["publisher_grants"].values()}
    assert grants == {(destination_topic(d), "serviceAccount:transform@p") for d in DESTINATIONS} | {
        (RAW_HITS, "serviceAccount:collect@p")}


@pytest.mark.parametrize("trigger", ["push", "schedule"])
def test_every_stage_subscription_dead_letters_with_service_agent_iam(rendered, trigger):
    r = rendered[trigger]
    # the service agent is granted subscriber on exactly the subscriptions with a dead-letter policy
    expected = {f"tp-{s}" for s, f in r["feeds"].items() if f["topic"] != "dead-letter"}
    expected |= {f"tp-{t}-to-bigquery" for t in RECORDS}
    assert set(r["dead_lettering"]) == expected
    assert {f"tp-deliver-{d}" for d in DESTINATIONS} <= expected


def test_the_subscription_resource_per_mode():
    pubsub = modules()["pubsub"]
    sub = pubsub.resource("google_pubsub_subscription", "stage")
    assert sub["for_each"] == "${local.feeds}"
    assert "filter" not in sub
    assert sub["name"] == "${var.prefix}-${each.key}"
    dynamics = {next(iter(d)): d[next(iter(d))] for d in sub["dynamic"]}
    # push_config only on the push subscriptions: without one a subscription is a pull subscription
    assert "local.push" in dynamics["push_config"]["for_each"]
    assert "oidc_token" in dynamics["push_config"]["content"][0]
    policy = dynamics["dead_letter_policy"]
    assert policy["for_each"] == '${each.value.topic == "dead-letter" ? [] : [1]}'
    assert policy["content"][0]["dead_letter_topic"] == '${google_pubsub_topic.this["dead-letter"].id}'
    assert block(sub, "retry_policy")["minimum_backoff"] == "${var.delivery.min_backoff_seconds}s"
    assert pubsub.locals["push"] == '${var.trigger == "push" ? local.feeds : local.archive}'
    assert pubsub.locals["pull"] == '${var.trigger == "schedule" ? local.stages : {}}'
    # the dead-letter topic (where every policy points) always has its subscriptions
    subs = pubsub.of_type("google_pubsub_subscription")
    assert subs["dead_letter_archive"]["topic"] == '${google_pubsub_topic.this["dead-letter"].id}'
    assert "count" not in subs["dead_letter_archive"] and "for_each" not in subs["dead_letter_archive"]
    # existing deployments keep transform's and the archive's subscriptions (state moved, not recreated)
    assert 'moved {\n  from = google_pubsub_subscription.push\n  to   = google_pubsub_subscription.stage\n}' in pubsub.text


def test_scheduler_module_only_with_the_schedule_trigger():
    root = modules()["root"]
    scheduler = root.modules["scheduler"]
    assert scheduler["count"] == '${var.stage_trigger == "schedule" ? 1 : 0}'
    assert scheduler["invoker_service_account"] == "${module.functions.invoker_service_account}"
    assert scheduler["destinations"] == "${var.destinations}"
    assert scheduler["transform_url"] == '${module.functions.urls["transform"]}'
    assert scheduler["deliver_url"] == '${module.functions.urls["deliver"]}'
    pubsub = root.modules["pubsub"]
    assert pubsub["trigger"] == "${var.stage_trigger}" and pubsub["destinations"] == "${var.destinations}"
    assert "cloudscheduler.googleapis.com" in root.locals["apis"]
    assert "gcp-sa-cloudscheduler.iam.gserviceaccount.com" in root.locals["scheduler_service_agent"]
    trigger = root.variables["stage_trigger"]
    assert trigger["default"] == "push"
    assert 'contains(["push", "schedule"], var.stage_trigger)' in trigger["validation"][0]["condition"]
    assert "default" not in root.variables["destinations"]  # required: it must match the config


def test_monitoring_watches_every_stage_subscription_in_both_modes():
    subscriptions = modules()["root"].modules["monitoring"]["subscriptions"]
    text = json.dumps(subscriptions)
    assert "module.pubsub.subscription_names.stages" in text  # pushed or drained, all of them
    outputs = modules()["pubsub"].outputs["subscription_names"]["value"]
    assert "for s in keys(local.feeds) :" in outputs["stages"]


def test_drain_jobs_post_with_oidc_as_the_invoker():
    sched = modules()["scheduler"]
    job = sched.resource("google_cloud_scheduler_job", "drain")
    assert job["for_each"] == "${local.jobs}"
    assert job["schedule"] == "${var.schedule}"
    assert sched.variables["schedule"]["default"] == "* * * * *"
    target = block(job, "http_target")
    assert target["http_method"] == "POST"
    assert target["uri"] == "${each.value.url}/drain"  # tagpipe.pipeline.drain.DRAIN_PATH
    assert target["body"] == "${base64encode(jsonencode(each.value.body))}"
    assert target["headers"] == {"Content-Type": "application/json"}
    oidc = block(target, "oidc_token")
    assert oidc["service_account_email"] == "${var.invoker_service_account}"
    assert oidc["audience"] == "${each.value.url}"  # Cloud Run checks the audience: the service URL
    assert block(job, "retry_config")["retry_count"] == 0
    grant = sched.resource("google_service_account_iam_member", "scheduler_token_creator")
    assert grant["role"] == "roles/iam.serviceAccountTokenCreator"
    assert grant["member"] == "serviceAccount:${var.scheduler_service_agent}"
    assert grant["service_account_id"].endswith("serviceAccounts/${var.invoker_service_account}")
    # the invoker may call transform and deliver (and only the private functions)
    fns = modules()["functions"]
    invoker = fns.resource("google_cloud_run_v2_service_iam_member", "push_invoker")
    assert invoker["for_each"] == "${local.private}" and invoker["role"] == "roles/run.invoker"


def test_one_drain_job_per_destination(tmp_path):
    tfvars = "\n".join([
        'project_id = "my-project"', 'region = "europe-west1"', 'prefix = "tp"',
        'transform_url = "https://t.run.app"', 'deliver_url = "https://d.run.app"',
        f"destinations = {json.dumps(DESTINATIONS)}", "timeouts = { transform = 60, deliver = 120 }",
        'invoker_service_account = "tp-push-invoker@my-project.iam.gserviceaccount.com"',
        'scheduler_service_agent = "service-1@gcp-sa-cloudscheduler.iam.gserviceaccount.com"', "",
    ])
    jobs = render(tmp_path, "scheduler", tfvars, ["jobs"])["jobs"]
    assert set(jobs) == {"transform"} | {f"deliver-{d}" for d in DESTINATIONS}
    assert jobs["transform"] == {"url": "https://t.run.app", "body": {}, "timeout": 60}
    for d in DESTINATIONS:
        assert jobs[f"deliver-{d}"] == {"url": "https://d.run.app", "body": {"destination": d}, "timeout": 120}


def test_the_drain_budget_stays_under_the_function_timeout():
    fns = modules()["functions"]
    env = fns.locals["function_env"]
    for name in ("transform", "deliver"):
        assert env[name] == {"TAGPIPE_DRAIN_SECONDS": f'${{tostring(floor(var.sizing["{name}"].timeout / 2))}}'}
    # collect: no publish batch window when one request runs per instance
    assert env["collect"] == {"TAGPIPE_PUBSUB_BATCH_MS": '${var.sizing["collect"].concurrency == 1 ? "0" : "2"}'}
    service = block(fns.resource("google_cloudfunctions2_function", "fn"), "service_config")
    assert service["environment_variables"] == "${merge(local.env, lookup(local.function_env, each.key, {}))}"


@pytest.mark.parametrize("tfvars, message", [
    (pubsub_vars("cron"), "trigger must be"),
    (pubsub_vars("push", destinations=[]), "destinations"),
    (pubsub_vars("push", destinations=["bad id"]), "destinations"),
])
def test_bad_trigger_or_destinations_are_refused(tmp_path, tfvars, message):
    with pytest.raises(RenderError, match=message):
        render(tmp_path, "pubsub", tfvars, ["feeds"])


def test_tfvars_example_and_docs_name_both_modes():
    example = (TF / "terraform.tfvars.example").read_text()
    assert re.search(r"^destinations = \[", example, re.M)
    assert '# stage_trigger = "schedule"' in example
    docs = (TF.parent / "docs" / "gcp.md").read_text()
    assert "stage_trigger" in docs and "deliver-<id>" in docs


@pytest.mark.parametrize("trigger", ["push", "schedule"])
def test_without_the_archive_function(tmp_path, trigger):
    r = render(tmp_path, "pubsub", pubsub_vars(trigger, archive=False), NAMES)
    assert "dead-letter-archive" not in r["feeds"] and "dead-letter-archive" not in r["push"]
    assert set(r["push"] if trigger == "push" else r["pull"]) == set(per_destination(TOPOLOGY, DESTINATIONS)) - {
        "dead-letter-archive"}
    assert r["pull" if trigger == "push" else "push"] == {}


def render_stage_sizing(tmp: Path, extra_tfvars: str = "") -> dict:
    """The root's stage_sizing, rendered by terraform with the root's own variables (no provider)."""
    src = (TF / "main.tf").read_text()
    start = src.index("  stage_defaults = ")
    main_tf = ("locals {\n" + src[start:src.index("\n}\n", start)] + "\n}\n"
               'output "stage_sizing" {\n  value = local.stage_sizing\n}\n')
    tfvars = 'project_id = "my-project"\ndestinations = ["meta"]\n' + extra_tfvars
    return apply_locals(tmp, main_tf, TF / "variables.tf", tfvars)["stage_sizing"]


def test_stage_sizing_follows_the_trigger_unless_set(tmp_path):
    """Push: 1 vCPU, 40 pushes at once. Schedule: a drain a minute, mostly waiting: 1/3 vCPU, one at a
    time (Cloud Run's rule below 1 vCPU). An explicit value wins either way."""
    push = render_stage_sizing(tmp_path / "push")
    assert {f: (s["cpu"], s["concurrency"]) for f, s in push.items()} == {"transform": ("1", 40), "deliver": ("1", 40)}
    schedule = render_stage_sizing(tmp_path / "schedule", 'stage_trigger = "schedule"\n')
    assert {f: (s["cpu"], s["concurrency"]) for f, s in schedule.items()} == {
        "transform": ("0.333", 1), "deliver": ("0.333", 1)}
    assert schedule["deliver"]["timeout"] == 120 and schedule["deliver"]["memory"] == "512Mi"
    pinned = render_stage_sizing(tmp_path / "pinned", 'stage_trigger = "schedule"\n'
                                 'functions = { deliver = { cpu = "1", concurrency = 8 } }\n')
    assert (pinned["deliver"]["cpu"], pinned["deliver"]["concurrency"]) == ("1", 8)
    assert (pinned["transform"]["cpu"], pinned["transform"]["concurrency"]) == ("0.333", 1)
