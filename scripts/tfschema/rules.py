"""The Google provider's own validation that its schema does not carry, for the resources tagpipe uses.

A schema says which arguments exist; the provider's Go code also refuses values (ValidateFunc),
combinations (ConflictsWith, ExactlyOneOf) and diffs (CustomizeDiff) before any API call, and those
are the errors a user meets first at `terraform plan`. Each rule cites the provider source
(hashicorp/terraform-provider-google, google/services/...) it copies. API-side rules (Pub/Sub names of
3-255 characters, ...) are the API's, met at apply, and are not here.

`violations(type_name, config)` takes a resource's configuration as nested dicts: attributes as plain
values (None when unset, UNKNOWN when not known yet), blocks as lists of dicts. Both the static check
and the stand-in provider call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Pattern:
    """ValidateFunc on a string: a regular expression and a length range."""

    path: tuple[str, ...]
    regex: str
    min_len: int
    max_len: int
    source: str

    def check(self, config: dict) -> list[str]:
        out = []
        for value in _values(config, self.path):
            if not isinstance(value, str):
                continue
            name = ".".join(self.path)
            if not self.min_len <= len(value) <= self.max_len:
                out.append(f"{name} ({value!r}) must be between {self.min_len} and {self.max_len} characters long, has {len(value)} [{self.source}]")
            if not re.fullmatch(self.regex, value):
                out.append(f"{name} ({value!r}) must match {self.regex} [{self.source}]")
        return out


@dataclass(frozen=True)
class ExactlyOneOf:
    block: tuple[str, ...]  # () = the resource itself
    keys: tuple[str, ...]
    source: str

    def check(self, config: dict) -> list[str]:
        out = []
        for body in _bodies(config, self.block):
            present = [k for k in self.keys if _present(body.get(k))]
            if len(present) != 1 and not any(body.get(k) is UNKNOWN for k in self.keys):
                where = ".".join(self.block) + ": " if self.block else ""
                out.append(f"{where}exactly one of {', '.join(self.keys)} must be set, found {present or 'none'} [{self.source}]")
        return out


@dataclass(frozen=True)
class ConflictsWith:
    block: tuple[str, ...]
    keys: tuple[str, ...]  # at most one of these
    source: str

    def check(self, config: dict) -> list[str]:
        out = []
        for body in _bodies(config, self.block):
            present = [k for k in self.keys if _present(body.get(k))]
            if len(present) > 1:
                where = ".".join(self.block) + ": " if self.block else ""
                out.append(f"{where}{' and '.join(present)} conflict: set only one [{self.source}]")
        return out


def _present(value: Any) -> bool:
    return value is UNKNOWN or value not in (None, [], {})


def _bodies(config: dict, path: tuple[str, ...]) -> list[dict]:
    bodies = [config]
    for step in path:
        nxt = []
        for body in bodies:
            value = body.get(step)
            if isinstance(value, list):
                nxt += [v for v in value if isinstance(v, dict)]
            elif isinstance(value, dict):
                nxt.append(value)
        bodies = nxt
    return bodies


def _values(config: dict, path: tuple[str, ...]) -> list[Any]:
    return [body.get(path[-1]) for body in _bodies(config, path[:-1])]


# verify.RFC1035NameTemplate with "*" inside ValidateRFC1035Name (google/verify/validation.go)
RFC1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"

RULES: dict[str, list] = {
    "google_service_account": [
        # account_id: ValidateFunc verify.ValidateRFC1035Name(6, 30) (resourcemanager/resource_google_service_account.go)
        Pattern(("account_id",), RFC1035, 6, 30, "resource_google_service_account.go: ValidateRFC1035Name(6, 30)"),
    ],
    "google_bigquery_dataset": [
        # validateDatasetId: ^[0-9A-Za-z_]+$, at most 1,024 characters (bigquery/resource_bigquery_dataset.go)
        Pattern(("dataset_id",), r"[0-9A-Za-z_]+", 1, 1024, "resource_bigquery_dataset.go: validateDatasetId"),
    ],
    "google_pubsub_subscription": [
        # bigquery_config / cloud_storage_config / push_config each ConflictsWith the other two
        # (pubsub/resource_pubsub_subscription.go)
        ConflictsWith((), ("bigquery_config", "cloud_storage_config", "push_config"), "resource_pubsub_subscription.go: ConflictsWith"),
        # filter: ValidateRegexp(`^[\s\S]{0,256}$`)
        Pattern(("filter",), r"[\s\S]{0,256}", 0, 256, "resource_pubsub_subscription.go: filter ValidateRegexp"),
    ],
    "google_cloud_scheduler_job": [
        ExactlyOneOf((), ("app_engine_http_target", "http_target", "pubsub_target"), "cloudscheduler/resource_cloud_scheduler_job.go: ExactlyOneOf"),
        # CustomizeDiff validateAuthHeaders: "only one of oauth_token or oidc_token can be specified"
        ConflictsWith(("http_target",), ("oauth_token", "oidc_token"), "resource_cloud_scheduler_job.go: validateAuthHeaders"),
    ],
    "google_secret_manager_secret": [
        ExactlyOneOf(("replication",), ("auto", "user_managed"), "secretmanager/resource_secret_manager_secret.go: ExactlyOneOf replication.0.auto, replication.0.user_managed"),
    ],
    "google_cloudfunctions2_function": [
        ConflictsWith(("service_config",), ("vpc_connector", "direct_vpc_network_interface"), "cloudfunctions2/resource_cloudfunctions2_function.go: ConflictsWith"),
    ],
}


def violations(type_name: str, config: dict) -> list[str]:
    return [msg for rule in RULES.get(type_name, []) for msg in rule.check(config)]


def planned_values(type_name: str, config: dict, provider_project: Any) -> dict[str, Any]:
    """Computed attributes the provider knows at plan time (its CustomizeDiff), the rest stay unknown.

    google_service_account: email = {account_id}@{project}.iam.gserviceaccount.com and member =
    serviceAccount:{email} since provider 6.13.0 (CHANGELOG: "made google_service_account email and
    member fields available during plan", PR #20510; resourceServiceAccountCustomDiff). project falls
    back to the provider's (tpgresource.DefaultProviderProject).
    """
    out: dict[str, Any] = {}
    project = config.get("project") if config.get("project") is not None else provider_project
    if type_name == "google_service_account":
        account = config.get("account_id")
        if isinstance(account, str) and isinstance(project, str):
            out["email"] = f"{account}@{project}.iam.gserviceaccount.com"
            out["member"] = f"serviceAccount:{out['email']}"
    if project is not None and "project" in config:
        out["project"] = project
    return out
