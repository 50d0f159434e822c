"""scripts/deploy.sh and scripts/package.sh, run for real with stand-in gcloud/terraform binaries.

Nothing reaches Google: each test builds a PATH of its own holding only the tools it means the
script to find (stubs that record their arguments), so "missing tool" is real absence.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "scripts" / "deploy.sh"
PACKAGE = ROOT / "scripts" / "package.sh"
BASICS = ["sed", "head", "dirname", "cat", "mkdir", "env", "rm", "ls", "tr"]
# The shell the scripts run under: TAGPIPE_TEST_BASH=/path/to/bash-3.2 runs this file under macOS's stock
# bash (3.2, which lacks mapfile and calls an empty array under set -u unbound); default: the machine's.
BASH = os.environ.get("TAGPIPE_TEST_BASH") or shutil.which("bash")

STUB = """#!{bash}
echo "{name} $*" >> "{log}"
{body}
"""


class Sandbox:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.log = tmp / "calls.log"
        self.log.touch()
        (self.bin / "bash").symlink_to(BASH)
        for tool in BASICS:
            found = shutil.which(tool)
            if found:
                (self.bin / tool).symlink_to(found)
        self.tfvars = tmp / "terraform.tfvars"
        self.config = tmp / "tagpipe.toml"
        self.config.write_text((ROOT / "tagpipe.example.toml").read_text())
        self.dist = tmp / "dist"

    def python(self) -> None:
        (self.bin / "python3").symlink_to(sys.executable)

    def stub(self, name: str, body: str = "exit 0") -> None:
        path = self.bin / name
        path.write_text(STUB.format(bash=BASH, name=name, log=self.log, body=body))
        path.chmod(0o755)

    def good_tools(self, gcloud_body: str = "exit 0") -> None:
        self.python()
        self.stub("gcloud", gcloud_body)
        self.stub("terraform", 'if [ "$2" = output ]; then echo "\\"https://collect.example\\""; fi')
        self.tfvars.write_text('project_id = "acme-prod-123"\nprefix     = "tp"\n'
                               'destinations = [\n  "meta", # CAPI\n  "ga4", "google_ads",\n]\n')

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        environ = {"PATH": str(self.bin), "HOME": str(self.tmp), "TAGPIPE_TFVARS": str(self.tfvars),
                   "TAGPIPE_DIST": str(self.dist), "TAGPIPE_CONFIG_FILE": str(self.config), **env}
        return subprocess.run([BASH, str(DEPLOY), *args], capture_output=True, text=True,
                              env=environ, timeout=60, cwd=self.tmp)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture
def box(tmp_path):
    return Sandbox(tmp_path)


def test_usage(box):
    result = box.run("launch")
    assert result.returncode == 64 and "usage: scripts/deploy.sh plan|deploy|destroy" in result.stderr


def test_everything_missing_is_listed_with_the_fix(box):
    result = box.run("plan")
    assert result.returncode == 2
    err = result.stderr
    assert "cannot plan yet; 4 thing(s) to fix" in err
    assert "gcloud not found. Install the Google Cloud CLI" in err
    assert "terraform not found. Install Terraform >= 1.5" in err
    assert "python3 not found" in err
    assert f"no {box.tfvars}. Create it: cp terraform/terraform.tfvars.example terraform/terraform.tfvars" in err
    assert box.calls() == []  # nothing was run


def test_missing_application_default_credentials(box):
    box.good_tools(gcloud_body='if [ "$1 $2" = "auth application-default" ]; then exit 1; fi')
    result = box.run("deploy")
    assert result.returncode == 2
    assert "no application-default credentials" in result.stderr
    assert "gcloud auth application-default login" in result.stderr
    assert not any(c.startswith("terraform") for c in box.calls())


def test_unreadable_credentials_file(box):
    box.good_tools()
    result = box.run("plan", GOOGLE_APPLICATION_CREDENTIALS=str(box.tmp / "nope.json"))
    assert result.returncode == 2 and "nope.json, which cannot be read" in result.stderr


@pytest.mark.parametrize(
    "tfvars, message",
    [
        ('region = "europe-west1"\n', "no project_id in"),
        ('project_id = "my-gcp-project"\n', 'still the example\'s "my-gcp-project"'),
    ],
)
def test_project_id_is_required(box, tfvars, message):
    box.good_tools()
    box.tfvars.write_text(tfvars)
    result = box.run("plan")
    assert result.returncode == 2 and message in result.stderr


def test_plan_packages_then_plans(box):
    box.good_tools()
    result = box.run("plan")
    assert result.returncode == 0, result.stderr
    assert "deploy: plan project=acme-prod-123 prefix=tp" in result.stdout
    calls = [c for c in box.calls() if c.startswith("terraform")]
    assert calls[0] == f"terraform -chdir={ROOT / 'terraform'} init -input=false"
    assert calls[1] == f"terraform -chdir={ROOT / 'terraform'} plan -input=false -var-file={box.tfvars}"
    for function in ("collect", "transform", "deliver"):
        names = zipfile.ZipFile(box.dist / f"{function}.zip").namelist()
        assert "main.py" in names and "requirements.txt" in names and "tagpipe.toml" in names
        assert "tagpipe/storage/bigquery.py" in names
        assert "tagpipe/storage/bigquery_schemas/tables/outcomes.json" in names
        assert not any("__pycache__" in n for n in names)


def test_deploy_stops_while_a_mounted_secret_has_no_value(box):
    box.good_tools(gcloud_body="""
case "$1 $2" in
  "secrets list") echo "projects/acme-prod-123/secrets/tp-META_ACCESS_TOKEN"; echo "projects/acme-prod-123/secrets/tp-GA4_API_SECRET" ;;
  "secrets versions") if [ "$4" = "tp-GA4_API_SECRET" ] || [ "$3" = "tp-GA4_API_SECRET" ]; then echo 1; fi ;;
esac
exit 0""")
    result = box.run("deploy")
    assert result.returncode == 3, result.stderr
    assert 'printf %s "$META_ACCESS_TOKEN" | gcloud secrets versions add tp-META_ACCESS_TOKEN --project acme-prod-123 --data-file=-' in result.stderr
    assert "tp-GA4_API_SECRET" not in result.stderr
    applies = [c for c in box.calls() if c.startswith("terraform") and " apply " in c]
    assert len(applies) == 1 and "-target=module.secrets" in applies[0]  # only the containers


def test_deploy_applies_when_secrets_are_filled(box):
    box.good_tools(gcloud_body="""
case "$1 $2" in
  "secrets list") echo "projects/acme-prod-123/secrets/tp-META_ACCESS_TOKEN" ;;
  "secrets versions") echo 1 ;;
esac
exit 0""")
    result = box.run("deploy", TAGPIPE_AUTO_APPROVE="1")
    assert result.returncode == 0, result.stderr
    applies = [c for c in box.calls() if c.startswith("terraform") and " apply " in c]
    assert len(applies) == 2
    assert applies[1].endswith(f"apply -input=false -var-file={box.tfvars} -auto-approve")
    assert "https://collect.example" in result.stdout


def test_destroy(box):
    box.good_tools()
    result = box.run("destroy")
    assert result.returncode == 0, result.stderr
    assert any(" destroy -input=false " in c for c in box.calls())


def test_a_config_destination_without_a_subscription_stops_deploy_and_plan(box):
    box.good_tools()
    box.tfvars.write_text('project_id = "acme-prod-123"\ndestinations = ["meta", "ga4"] # not google_ads\n')
    for action in ("deploy", "plan"):
        result = box.run(action)
        assert result.returncode == 2, result.stderr
        assert "destinations lacks google_ads" in result.stderr
        assert 'destinations = ["meta", "ga4", "google_ads"]' in result.stderr
    assert not any(c.startswith("terraform") for c in box.calls())
    box.tfvars.write_text('project_id = "acme-prod-123"\n')  # no list at all: every destination is missing
    assert "destinations lacks meta, ga4, google_ads" in box.run("plan").stderr
    assert box.run("destroy").returncode == 0  # tearing down needs no such check


def test_a_disabled_destination_needs_no_subscription_and_an_extra_one_is_a_note(box):
    box.good_tools()
    box.config.write_text(box.config.read_text().replace(
        '[destinations.google_ads]\n', '[destinations.google_ads]\nenabled = false\n'))
    box.tfvars.write_text('project_id = "acme-prod-123"\ndestinations = ["meta", "ga4", "tiktok"]\n')
    result = box.run("plan")
    assert result.returncode == 0, result.stderr
    assert "not enabled in" in result.stderr and "tiktok" in result.stderr


def test_package_needs_a_config(tmp_path):
    result = subprocess.run([str(PACKAGE), str(tmp_path / "out")], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "TAGPIPE_CONFIG_FILE": str(tmp_path / "missing.toml")})
    assert result.returncode == 2
    assert "cp tagpipe.example.toml tagpipe.toml" in result.stderr


def test_package_is_deterministic(tmp_path):
    env = {**os.environ, "TAGPIPE_CONFIG_FILE": str(ROOT / "tagpipe.example.toml")}
    for out in ("a", "b"):
        subprocess.run([str(PACKAGE), str(tmp_path / out)], check=True, capture_output=True, env=env, timeout=60)
    for function in ("collect", "transform", "deliver"):
        assert (tmp_path / "a" / f"{function}.zip").read_bytes() == (tmp_path / "b" / f"{function}.zip").read_bytes()
    main = zipfile.ZipFile(tmp_path / "a" / "deliver.zip").read("main.py")
    assert main == (ROOT / "functions" / "deliver" / "main.py").read_bytes()
    requirements = zipfile.ZipFile(tmp_path / "a" / "collect.zip").read("requirements.txt").decode()
    assert "functions-framework" in requirements and "google-cloud-pubsub" in requirements


def _check_destinations():
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_destinations", ROOT / "scripts" / "check_destinations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_secret_table_is_what_tagpipe_reads():
    """scripts/check_destinations.py is stdlib only, so it keeps its own table: it must equal the settings classes."""
    from tagpipe.config import SegmentConfig, ShopifyConfig, WooCommerceConfig
    from tagpipe.destinations import REGISTRY, destination_class

    check = _check_destinations()
    for type_ in REGISTRY:
        cls = destination_class(type_)
        required = {k: f.default for k, f in cls.Settings.model_fields.items()
                    if k.endswith("_env") and k not in cls.optional_secrets}  # fmt: skip
        assert check.DESTINATION_SECRETS[type_] == required, type_
    for section, model in (("shopify", ShopifyConfig), ("woocommerce", WooCommerceConfig), ("segment", SegmentConfig)):
        [(key, field)] = [(k, f) for k, f in model.model_fields.items() if k.endswith("_env")]
        assert check.SOURCE_SECRETS[section] == (key, field.default)


def test_every_secret_terraform_mounts_by_default_is_one_tagpipe_reads():
    check = _check_destinations()
    read = {v for table in check.DESTINATION_SECRETS.values() for v in table.values()}
    mounted = {var for var, functions in check.mounted_secrets("").items() if functions}
    assert mounted and mounted <= read, mounted - read


def test_a_secret_the_config_reads_must_be_mounted_for_its_function(box):
    box.good_tools()
    box.config.write_text(box.config.read_text() + '\n[destinations.pin]\ntype = "pinterest"\nad_account_id = "549755885175"\n'
                          '\n[shopify]\n')
    box.tfvars.write_text(box.tfvars.read_text().replace('"google_ads",', '"google_ads", "pin",'))
    result = box.run("plan")
    assert result.returncode == 2, result.stderr
    assert 'PINTEREST_ACCESS_TOKEN = ["deliver"] (destinations.pin.access_token_env' in result.stderr
    assert 'SHOPIFY_WEBHOOK_SECRET = ["collect"] (shopify.secret_env' in result.stderr
    box.tfvars.write_text(box.tfvars.read_text() + 'secrets = {\n  META_ACCESS_TOKEN = ["deliver"]  # Meta\n'
                          '  GA4_API_SECRET = ["deliver"]\n  GOOGLE_ADS_DEVELOPER_TOKEN = ["deliver"]\n'
                          '  GOOGLE_ADS_CLIENT_ID = ["deliver"]\n  GOOGLE_ADS_CLIENT_SECRET = ["deliver"]\n'
                          '  GOOGLE_ADS_REFRESH_TOKEN = ["deliver"]\n  PINTEREST_ACCESS_TOKEN = ["deliver"]\n'
                          '  SHOPIFY_WEBHOOK_SECRET = ["collect"]\n}\n')
    assert box.run("plan").returncode == 0
