"""terraform/ checked against hashicorp/google's own schema: 6.x (pinned), 7.x and 8.x (the upgrades).

The schema comes from the provider's prebuilt CDK bindings (scripts/tfschema; scripts/tools.sh
downloads the pinned wheels). Each check category has a small tree of its own with one fault in it,
so a check that stopped catching its fault fails here; then the whole tree must be clean.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from scripts.tfschema.extract import BINDINGS, load_schema
from tests.terraform.hcl import TF, modules
from tests.terraform.provider_schema import check_tree, count_blocks

MAJORS = sorted(BINDINGS)


@pytest.fixture(scope="module", params=MAJORS, ids=lambda m: f"google{m}")
def schema(request):
    try:
        return load_schema(request.param)
    except FileNotFoundError as exc:
        reason = f"{exc} (the provider schema is read from its CDK binding's wheel)"
        if os.environ.get("TAGPIPE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{reason} (TAGPIPE_REQUIRE_TOOLS=1, so this is a failure, not a skip)")
        pytest.skip(reason)


def findings_of(tmp_path: Path, schema: dict, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return [str(f) for f in check_tree(tmp_path, schema)]


SA = 'resource "google_service_account" "sa" {\n  account_id = "tagpipe-collect"\n}\n'
FN = """
resource "google_cloudfunctions2_function" "fn" {
  name     = "tagpipe-collect"
  location = "europe-west1"
  %s
}
"""

# (id, main.tf, the one finding expected)
CASES = [
    ("unknown_type", 'resource "google_pubsub_topik" "t" {\n  name = "t"\n}\n', "unknown resource type google_pubsub_topik"),
    ("unknown_data_type", 'data "google_projekt" "p" {}\n', "unknown data source type google_projekt"),
    ("unknown_argument", 'resource "google_pubsub_topic" "t" {\n  name = "t"\n  labelz = {}\n}\n', "unknown argument labelz"),
    ("missing_required", 'resource "google_pubsub_subscription" "s" {\n  name = "s"\n}\n', "required argument topic is missing"),
    ("missing_required_block", 'resource "google_monitoring_alert_policy" "p" {\n  display_name = "p"\n  combiner = "OR"\n}\n',
     "required block conditions is missing"),
    ("computed_set", 'resource "google_service_account" "sa" {\n  account_id = "tagpipe-collect"\n  email = "x@y"\n}\n',
     "email is computed by the provider and cannot be set"),
    ("block_as_attribute", 'resource "google_pubsub_subscription" "s" {\n  name = "s"\n  topic = "t"\n'
     '  push_config = { push_endpoint = "https://x" }\n}\n', "push_config is a block"),
    ("attribute_as_block", 'resource "google_pubsub_topic" "t" {\n  name = "t"\n  labels {\n    a = "b"\n  }\n}\n',
     "labels is an attribute"),
    ("max_one_repeated", 'resource "google_pubsub_subscription" "s" {\n  name = "s"\n  topic = "t"\n'
     '  push_config {\n    push_endpoint = "https://a"\n  }\n  push_config {\n    push_endpoint = "https://b"\n  }\n}\n',
     "at most one push_config block is allowed, found 2"),
    ("literal_number", 'resource "google_pubsub_subscription" "s" {\n  name = "s"\n  topic = "t"\n  ack_deadline_seconds = "ten"\n}\n',
     "'ten' is not a number"),
    ("literal_bool", 'resource "google_pubsub_subscription" "s" {\n  name = "s"\n  topic = "t"\n  enable_message_ordering = 3\n}\n',
     "3 is not a bool"),
    ("literal_list", 'resource "google_pubsub_topic_iam_member" "m" {\n  topic = "t"\n  role = ["roles/pubsub.publisher"]\n'
     '  member = "allUsers"\n}\n', "where a string is wanted"),
    ("enum", FN % 'service_config {\n    ingress_settings = "ALLOW_SOME"\n  }', "'ALLOW_SOME' is not one of the documented values"),
    ("enum_in_conditional", FN % 'service_config {\n    ingress_settings = var.public ? "ALLOW_ALL" : "INTERNAL_ONLY"\n  }',
     "'INTERNAL_ONLY' is not one of the documented values"),
    ("unexported_attribute", SA + 'output "e" {\n  value = google_service_account.sa.emails\n}\n',
     "google_service_account exports no attribute emails"),
    ("unexported_nested_attribute", FN % "" + 'output "u" {\n  value = google_cloudfunctions2_function.fn.service_config[0].url\n}\n',
     "exports no attribute url"),
    ("set_block_indexed", FN % "" + 'output "a" {\n  value = google_cloudfunctions2_function.fn.event_trigger[0].event_filters[0].attribute\n}\n',
     "event_filters is a set of blocks"),
    ("undeclared_resource", 'output "e" {\n  value = google_service_account.nobody.email\n}\n', "reference to a resource not declared"),
    ("dynamic_for_attribute", 'resource "google_pubsub_topic" "t" {\n  name = "t"\n  dynamic "labels" {\n    for_each = {}\n'
     '    content {}\n  }\n}\n', 'dynamic "labels": labels is an attribute'),
    ("provider_argument", 'provider "google" {\n  projekt = "p"\n}\n', "provider.google.projekt: unknown argument projekt"),
    ("rule_account_id_length", 'resource "google_service_account" "sa" {\n  account_id = "prefix-of-18-chars-push-invoker"\n}\n',
     "must be between 6 and 30 characters long, has 31"),
    ("rule_account_id_format", 'resource "google_service_account" "sa" {\n  account_id = "Tagpipe_collect"\n}\n', "must match"),
    ("rule_conflicts_with", 'resource "google_pubsub_subscription" "s" {\n  name = "s"\n  topic = "t"\n  push_config {\n'
     '    push_endpoint = "https://a"\n  }\n  bigquery_config {\n    table = "p.d.t"\n  }\n}\n', "bigquery_config and push_config conflict"),
    ("rule_exactly_one_of", 'resource "google_cloud_scheduler_job" "j" {\n  name = "j"\n}\n',
     "exactly one of app_engine_http_target, http_target, pubsub_target must be set"),
]

MODULE_VARS = 'variable "name" {\n  type = string\n}\nvariable "labels" {\n  type = map(string)\n  default = {}\n}\n'
MODULE_OUT = 'output "id" {\n  value = var.name\n}\n'
MODULE_CASES = [
    ("module_unknown_variable", 'module "m" {\n  source = "./modules/m"\n  name = "x"\n  labelz = {}\n}\n', "module ./modules/m has no variable labelz"),
    ("module_missing_variable", 'module "m" {\n  source = "./modules/m"\n}\n', "variable name of ./modules/m has no default and is not passed"),
    ("module_unknown_output", 'module "m" {\n  source = "./modules/m"\n  name = "x"\n}\noutput "o" {\n  value = module.m.ids\n}\n',
     "module ./modules/m has no output ids"),
    ("module_missing_source", 'module "m" {\n  source = "./modules/nothing"\n}\n', "is no module in this tree"),
]


@pytest.mark.parametrize(("main_tf", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_check_catches_its_fault(tmp_path, schema, main_tf, expected):
    found = findings_of(tmp_path, schema, {"main.tf": main_tf})
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(("main_tf", "expected"), [c[1:] for c in MODULE_CASES], ids=[c[0] for c in MODULE_CASES])
def test_module_calls_are_checked_against_the_module(tmp_path, schema, main_tf, expected):
    files = {"main.tf": main_tf, "modules/m/variables.tf": MODULE_VARS, "modules/m/outputs.tf": MODULE_OUT}
    found = findings_of(tmp_path, schema, files)
    assert len(found) == 1 and expected in found[0], found


def test_the_same_tree_without_its_faults_is_clean(tmp_path, schema):
    """The checks above fire on the fault, not on the resources around it."""
    clean = SA + FN % 'service_config {\n    ingress_settings = var.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"\n  }' + """
variable "public" {
  type = bool
}
output "email" {
  value = google_service_account.sa.email
}
output "uri" {
  value = google_cloudfunctions2_function.fn.service_config[0].uri
}
module "m" {
  source = "./modules/m"
  name   = google_service_account.sa.member
}
output "id" {
  value = module.m.id
}
"""
    files = {"main.tf": clean, "modules/m/variables.tf": MODULE_VARS, "modules/m/outputs.tf": MODULE_OUT}
    assert findings_of(tmp_path, schema, files) == []


def test_the_whole_tree_is_clean(schema):
    found = check_tree(TF, schema)
    assert [str(f) for f in found] == [], f"google {schema['provider_version']}"
    resources, data = count_blocks(TF)
    assert resources >= 45 and data >= 1  # the check saw the tree (52 resource blocks, 1 data block today)


def test_every_resource_type_in_the_tree_is_in_the_schema(schema):
    """Belt and braces over the tree walk: every `resource "google_*"` written anywhere has a schema."""
    written = set(re.findall(r'^(?:resource|data) "(google_\w+)"', "".join(m.text for m in modules().values()), re.M))
    known = set(schema["resource_schemas"]) | set(schema["data_source_schemas"])
    assert written and written <= known, written - known


def test_versions_tf_pins_the_checked_major():
    """The root admits the 6.x whose schema is checked here, from that minor on; no module admits 7.x."""
    from tests.terraform.hcl import modules as parsed

    checked = BINDINGS["6"].provider_version.rsplit(".", 1)[0]  # "6.50"
    for name, mod in parsed().items():
        (tf,) = mod.terraform
        version = tf["required_providers"][0]["google"]["version"]
        m = re.fullmatch(r"~> ?(\d+\.\d+)", version)
        assert m and m.group(1).split(".")[0] == "6", f"{name}: {version}"
        if name == "root":
            assert m.group(1) == checked, f"root pins {version}, the checked schema is {checked}"
