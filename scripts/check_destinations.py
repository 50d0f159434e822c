"""Compare terraform.tfvars with the config (scripts/deploy.sh runs it): `destinations` with the config's
[destinations.<id>], and `secrets` with the variables the config's destinations and sources read.

Each id in `destinations` gets its own deliveries topic and subscription; an enabled destination missing
from tfvars has no topic, so transform could not publish its tasks and every hit would retry and
dead-letter. A secret the config reads that no function mounts stops that function at start (tagpipe
refuses to run without a destination's secret). Stdlib only (deploy runs before any virtualenv exists).

    python3 scripts/check_destinations.py <tagpipe.toml> <terraform.tfvars>
exit 0: in step; 1: a config destination has no topic or a secret is not mounted (printed with the fix).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

LIST_RE = re.compile(r"^\s*destinations\s*=\s*\[(?P<items>[^\]]*)\]", re.MULTILINE)


def tfvars_destinations(text: str) -> list[str] | None:
    text = re.sub(r"(?m)\s*(#|//).*$", "", text)  # comments
    match = LIST_RE.search(text)
    return None if match is None else re.findall(r'"([^"]*)"', match.group("items"))


def config_destinations(text: str) -> list[str]:
    """The destinations transform can route to (enabled ones)."""
    return [d for d, body in tomllib.loads(text).get("destinations", {}).items()
            if isinstance(body, dict) and body.get("enabled", True)]


# The secret settings of each destination type with their default variables, and the ones it runs without
# (tests/terraform/test_deploy_script.py checks this table against tagpipe's own settings classes).
DESTINATION_SECRETS: dict[str, dict[str, str]] = {
    "meta": {"access_token_env": "META_ACCESS_TOKEN"},
    "ga4": {"api_secret_env": "GA4_API_SECRET"},
    "google_ads": {"developer_token_env": "GOOGLE_ADS_DEVELOPER_TOKEN", "client_id_env": "GOOGLE_ADS_CLIENT_ID",
                   "client_secret_env": "GOOGLE_ADS_CLIENT_SECRET", "refresh_token_env": "GOOGLE_ADS_REFRESH_TOKEN"},
    "data_manager": {},  # credentials_env is optional: on GCP deliver's own service account
    "tiktok": {"access_token_env": "TIKTOK_ACCESS_TOKEN"},
    "webhook": {"secret_env": "TAGPIPE_WEBHOOK_SECRET"},
    "pinterest": {"access_token_env": "PINTEREST_ACCESS_TOKEN"},
    "snapchat": {"access_token_env": "SNAPCHAT_ACCESS_TOKEN"},
    "reddit": {"access_token_env": "REDDIT_ACCESS_TOKEN"},
    "linkedin": {"access_token_env": "LINKEDIN_ACCESS_TOKEN"},
    "microsoft_ads": {"access_token_env": "MICROSOFT_ADS_CAPI_TOKEN"},
    "log": {},
}
# Sources that verify what they receive with a secret collect reads: [shopify] secret_env, ...; needed
# when the config has the section (without its secret a source refuses every call, 401).
SOURCE_SECRETS: dict[str, tuple[str, str]] = {
    "shopify": ("secret_env", "SHOPIFY_WEBHOOK_SECRET"),
    "woocommerce": ("secret_env", "WOOCOMMERCE_WEBHOOK_SECRET"),
    "segment": ("write_keys_env", "SEGMENT_WRITE_KEYS"),
}
VARIABLES_TF = Path(__file__).resolve().parents[1] / "terraform" / "variables.tf"


def config_secrets(text: str) -> dict[str, tuple[str, str]]:
    """Variable -> (function that reads it, the config key naming it), for the enabled destinations
    and the configured sources."""
    config = tomllib.loads(text)
    out: dict[str, tuple[str, str]] = {}
    for dest_id, body in config.get("destinations", {}).items():
        if not isinstance(body, dict) or not body.get("enabled", True):
            continue
        for key, default in DESTINATION_SECRETS.get(body.get("type", ""), {}).items():
            out.setdefault(body.get(key) or default, ("deliver", f"destinations.{dest_id}.{key}"))
    for section, (key, default) in SOURCE_SECRETS.items():
        if isinstance(config.get(section), dict):
            out.setdefault(config[section].get(key) or default, ("collect", f"{section}.{key}"))
    return out


def mounted_secrets(tfvars: str) -> dict[str, list[str]]:
    """`secrets` of the tfvars, else the root module's default: variable -> the functions that mount it."""
    text = re.sub(r"(?m)\s*(#|//).*$", "", tfvars)
    match = re.search(r"^\s*secrets\s*=\s*\{(?P<body>[^}]*)\}", text, re.MULTILINE)
    if match is None:
        variables = re.sub(r"(?m)\s*(#|//).*$", "", VARIABLES_TF.read_text())
        block = variables[variables.index('variable "secrets"'):]
        match = re.search(r"default\s*=\s*\{(?P<body>[^}]*)\}", block)
    body = match.group("body") if match else ""
    return {name: re.findall(r'"([^"]*)"', functions)
            for name, functions in re.findall(r"(\w+)\s*=\s*\[([^\]]*)\]", body)}


def main(config_path: str, tfvars_path: str) -> int:
    config_text, tfvars_text = Path(config_path).read_text(), Path(tfvars_path).read_text()
    wanted = config_destinations(config_text)
    listed = tfvars_destinations(tfvars_text)
    missing = [d for d in wanted if d not in (listed or [])]
    if missing:
        suggestion = ", ".join(f'"{d}"' for d in dict.fromkeys([*(listed or []), *wanted]))
        print(f"{tfvars_path}: destinations lacks {', '.join(missing)}, enabled in {config_path}: their delivery "
              f"tasks would have no topic to go to, and their hits would retry and dead-letter. Set: destinations = [{suggestion}]",
              file=sys.stderr)
        return 1
    mounted = mounted_secrets(tfvars_text)
    unmounted = {var: (fn, key) for var, (fn, key) in config_secrets(config_text).items() if fn not in mounted.get(var, [])}
    if unmounted:
        lines = "; ".join(f'{var} = ["{fn}"] ({key} in {config_path})' for var, (fn, key) in unmounted.items())
        print(f"{tfvars_path}: secrets does not give these to the function that reads them, so it would stop at "
              f"start: {lines}. Add them to secrets in {tfvars_path} (each value then with gcloud secrets versions add)",
              file=sys.stderr)
        return 1
    extra = [d for d in listed or [] if d not in wanted]
    if extra:
        print(f"note: destinations in {tfvars_path} not enabled in {config_path}: {', '.join(extra)} "
              "(their topics and subscriptions stay idle)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
