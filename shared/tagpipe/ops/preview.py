"""Preview: what tagpipe would send for a sample hit, without sending anything.

    hits = load_samples(text_or_path)          # RawHit JSON, a JSON-API body, a gtag query string / URL, or a
                                               # list of {"name", "hit" | "json" | "gtag", ...} entries
    report = preview(config, hits)             # parse -> route (consent, tags, prepare) -> build_requests
    print(render(report))                      # or json.dumps(report): the golden tests compare that

The same code path as transform and deliver (Transformer.route, Destination.build_requests), with each
destination's clock set to the hit's received_at, so a saved sample previews the same way tomorrow.
Secrets are masked everywhere in the report: query parameters (access_token, api_secret, appsecret_proof,
...), headers (Authorization, developer-token, Access-Token, signatures) and any secret value itself.
"""

from __future__ import annotations

import json
import os
import re
import time
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tagpipe.errors import ConfigError, InvalidInput
from tagpipe.models import HIT_LEVEL, RawHit, new_id
from tagpipe.settings import secret

MASK = "***"
SECRET_PARAMS = frozenset({"access_token", "api_secret", "appsecret_proof", "key", "api_key", "token", "secret",
                           "sig", "signature", "client_secret", "refresh_token"})  # fmt: skip
SECRET_HEADER_PARTS = ("authorization", "token", "secret", "signature", "api-key", "apikey", "cookie")
PLACEHOLDER = "preview-placeholder-"


# --------------------------------------------------------------------------- samples


def load_samples(sample: str, now: float | None = None) -> list[tuple[str, RawHit]]:
    """(name, RawHit) pairs from a file path or inline text (see the module docstring)."""
    path = Path(sample)
    text = sample
    name = "sample"
    try:
        if len(sample) < 4096 and "\n" not in sample and path.is_file():
            text, name = path.read_text(encoding="utf-8"), path.name
    except OSError:
        pass
    now = time.time() if now is None else now
    stripped = text.strip()
    if not stripped:
        raise InvalidInput("empty_sample", "the sample is empty")
    if stripped[0] in "{[":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidInput("invalid_json", f"the sample is not valid JSON: {exc.msg} at line {exc.lineno}") from None
        return _from_json(data, name, now)
    if "=" not in stripped:
        raise InvalidInput("sample_not_found", f"no file {sample[:200]!r}, and it is neither JSON nor a gtag query string")
    return [(name, gtag_hit(stripped, now=now))]


def _is_raw_hit(data: Any) -> bool:
    return isinstance(data, dict) and data.get("source") in ("gtag", "mp", "json") and (
        "body" in data or "query" in data
    )


def _is_entry(data: Any) -> bool:
    return isinstance(data, dict) and any(k in data for k in ("hit", "json", "gtag")) and "event_name" not in data


def _from_json(data: Any, name: str, now: float) -> list[tuple[str, RawHit]]:
    if isinstance(data, dict) and isinstance(data.get("hits"), list):
        data = data["hits"]
    if _is_raw_hit(data):
        return [(name, _raw_hit(data, now))]
    if _is_entry(data):
        return [entry_hit(data, 0, now)]
    if isinstance(data, list) and data and all(_is_raw_hit(d) or _is_entry(d) for d in data):
        return [
            (f"{name}[{i}]", _raw_hit(d, now)) if _is_raw_hit(d) else entry_hit(d, i, now)
            for i, d in enumerate(data)
        ]
    return [(name, json_hit(data, now=now))]  # a JSON-API body: one event, a list, or {"events": [...]}


def _raw_hit(data: dict, now: float) -> RawHit:
    data = {k: v for k, v in data.items() if not k.startswith("_")}  # "_source", "_note": fixture comments
    data.setdefault("received_at", now)
    try:
        return RawHit.model_validate(data)
    except ValueError as exc:
        raise InvalidInput("invalid_sample", f"the RawHit sample does not validate: {exc}") from None


def json_hit(body: Any, *, headers: dict | None = None, cookies: dict | None = None, now: float | None = None,
             hit_id: str | None = None, client_ip: str | None = None) -> RawHit:  # fmt: skip
    return RawHit(
        hit_id=hit_id or new_id(), received_at=time.time() if now is None else now, source="json", path="/events",
        body=body if isinstance(body, str) else json.dumps(body),
        headers={"content-type": "application/json", **_lower(headers)}, cookies=dict(cookies or {}),
        client_ip=client_ip,
    )  # fmt: skip


def gtag_hit(query: str, *, body: str = "", headers: dict | None = None, cookies: dict | None = None,
             now: float | None = None, hit_id: str | None = None, client_ip: str | None = None) -> RawHit:  # fmt: skip
    """A gtag.js hit from its query string, or a whole https://.../g/collect?... URL."""
    path = "/g/collect"
    if query.startswith(("http://", "https://", "/")):
        parts = urlsplit(query)
        query, path = parts.query, parts.path or path
    return RawHit(
        hit_id=hit_id or new_id(), received_at=time.time() if now is None else now, source="gtag",
        method="POST" if body else "GET", path=path, query=query.lstrip("?"), body=body,
        headers=_lower(headers), cookies=dict(cookies or {}), client_ip=client_ip,
    )  # fmt: skip


def entry_hit(entry: dict, index: int, now: float) -> tuple[str, RawHit]:
    """One entry of a hits.json list: {"name", "hit": RawHit} | {"name", "json": body} | {"name", "gtag": query}."""
    name = str(entry.get("name") or f"hit{index}")
    hit_id = entry.get("hit_id") or re.sub(r"[^A-Za-z0-9_-]", "-", name)
    at = float(entry.get("received_at", now))
    common = dict(headers=entry.get("headers"), cookies=entry.get("cookies"), now=at, hit_id=hit_id,
                  client_ip=entry.get("client_ip"))  # fmt: skip
    if "hit" in entry:
        return name, _raw_hit({"hit_id": hit_id, **entry["hit"]}, at)
    if "json" in entry:
        return name, json_hit(entry["json"], **common)
    return name, gtag_hit(entry["gtag"], body=entry.get("body", ""), **common)


def _lower(headers: dict | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


# --------------------------------------------------------------------------- secrets


def secret_env_names(config_path: str | os.PathLike) -> dict[str, str]:
    """The environment variables the file's enabled destinations read secrets from -> their setting."""
    from tagpipe.config import load_config

    return load_config(config_path).secret_variables()


def placeholder_environ(config) -> dict[str, str]:
    """Every secret variable the config's enabled destinations read: its value, or a placeholder where
    it is unset (preview never sends, and masks secrets anyway). Passed to the runtime, never written
    to the process environment."""
    return {var: secret(var) or PLACEHOLDER + var.lower() for var in config.secret_variables()}


def placeholders_in(environ: dict[str, str]) -> list[str]:
    return [var for var, value in environ.items() if value.startswith(PLACEHOLDER)]


def mask_secret_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*/:")))


def mask_secret_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: MASK if any(p in k.lower() for p in SECRET_HEADER_PARTS) else v for k, v in headers.items()}


def scrub_secrets(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for s in secrets:
            if s in value:
                value = value.replace(s, MASK)
        return value
    if isinstance(value, dict):
        return {k: scrub_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_secrets(v, secrets) for v in value]
    return value


# --------------------------------------------------------------------------- the preview itself


class PreviewRuntime:
    """What Transformer.route needs from a Runtime (config, entries, destinations), without bus or store."""

    def __init__(self, config, environ: dict[str, str] | None = None) -> None:
        self.config = config
        self.environ = environ

    @cached_property
    def entries(self):
        return self.config.resolved_entries(self.environ)

    @cached_property
    def destinations(self):
        from tagpipe.destinations import destination_class

        return {e.id: destination_class(e.type)(e.id, e.settings, e.secrets) for e in self.entries.values() if e.enabled}


def _split_uid(uid: str) -> tuple[str, str | None]:
    base, _, tag = uid.partition("#")
    return base, tag or None


def preview(config, hits: list[tuple[str, RawHit]], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The structured report for these hits (JSON-serialisable, secrets masked). `environ`: where the
    destinations' secrets come from (placeholder_environ), default the process environment."""
    from tagpipe.parsing import parse_hit
    from tagpipe.pipeline.transform import Transformer

    runtime = PreviewRuntime(config, environ)
    transformer = Transformer(runtime)  # type: ignore[arg-type]
    tagging = config.tagging()
    secrets = sorted({v for e in runtime.entries.values() for v in e.secrets.values() if len(v) >= 4}, key=len,
                     reverse=True)  # fmt: skip
    report: dict[str, Any] = {"config": config.source, "hits": []}
    for name, hit in hits:
        out: dict[str, Any] = {"name": name, "hit_id": hit.hit_id, "source": hit.source}
        report["hits"].append(out)
        try:
            events = parse_hit(hit)
        except InvalidInput as exc:
            out["error"] = {"code": exc.code, "message": exc.message}
            continue
        for destination in runtime.destinations.values():
            destination.now = lambda at=hit.received_at: at  # the clock the hit was received at
        all_tasks = []
        out["events"] = []
        for event in events:
            tasks, outcomes = transformer.route(event)
            all_tasks += tasks
            ev = tagging.evaluate(event) if tagging else None
            dests: dict[str, Any] = {}
            for dest_id in runtime.entries:
                row: dict[str, Any] = {}
                stopped = any(o.destination == dest_id and o.reason in ("disabled", "consent") for o in outcomes)
                if ev is not None and tagging.manages(dest_id) and not stopped:  # route never got to the tags
                    row["tags"] = [
                        {"tag": d.tag.name, "status": d.status, **({"trigger": d.detail} if d.detail else {})}
                        for d in tagging.decide(ev, dest_id)
                    ]
                row["tasks"] = [
                    {"tag": _split_uid(t.event_uid)[1], "event_name": t.event_name, "identifiers": t.identifiers}
                    for t in tasks if t.destination == dest_id
                ]  # fmt: skip
                row["outcomes"] = [
                    {"tag": _split_uid(o.event_uid)[1], "outcome": o.outcome.value, "reason": o.reason, "detail": o.detail}
                    for o in outcomes if o.destination == dest_id
                ]  # fmt: skip
                dests[dest_id] = {k: v for k, v in row.items() if v}
            hit_level = [{"outcome": o.outcome.value, "reason": o.reason} for o in outcomes if o.destination == HIT_LEVEL]
            out["events"].append({
                "event_uid": event.event_uid, "name": event.name, "event_id": event.event_id,
                **({"outcomes": hit_level} if hit_level else {}), "destinations": dests,
            })  # fmt: skip
        out["requests"], out["rejected"] = _requests(runtime, all_tasks, secrets)
    return scrub_secrets(report, secrets)


def _requests(runtime: PreviewRuntime, tasks, secrets: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    by_dest: dict[str, list] = {}
    for t in tasks:
        by_dest.setdefault(t.destination, []).append(t)
    requests: dict[str, Any] = {}
    rejected: dict[str, Any] = {}
    for dest_id, dest_tasks in by_dest.items():
        destination = runtime.destinations[dest_id]
        oauth = getattr(destination, "oauth", None)
        if oauth is not None and hasattr(oauth, "access_token"):  # preview never calls a token endpoint
            oauth.access_token, oauth.expires_at = PLACEHOLDER + "access-token", float("inf")
        try:
            batch = destination.build_requests(dest_tasks)
        except (ConfigError, InvalidInput) as exc:
            requests[dest_id] = [{"error": str(exc)}]
            continue
        rows = []
        for r in batch.requests:
            body: Any = r.json
            if body is None and r.content is not None:
                try:
                    body = json.loads(r.content)
                except ValueError:
                    body = r.content.decode("utf-8", "replace")
            rows.append({
                "method": r.method, "url": mask_secret_url(r.masked_url or r.url), "headers": mask_secret_headers(r.headers),
                "tasks": list(r.event_uids), "body": body,
            })  # fmt: skip
        if rows:
            requests[dest_id] = rows
        if batch.rejected:
            rejected[dest_id] = [{"task": x.event_uid, "reason": x.reason, "detail": x.detail} for x in batch.rejected]
    return requests, rejected


# --------------------------------------------------------------------------- text


def render(report: dict[str, Any], *, payloads: bool = True) -> str:
    lines: list[str] = []
    for hit in report["hits"]:
        lines.append(f"hit {hit['name']} ({hit['source']}, hit_id {hit['hit_id']})")
        if "error" in hit:
            lines.append(f"  rejected at parse: {hit['error']['code']}: {hit['error']['message']}")
            continue
        for event in hit["events"]:
            lines.append(f"  event {event['name']} (event_id {event['event_id']}, {event['event_uid']})")
            for o in event.get("outcomes", []):
                lines.append(f"    {o['outcome']}: {o['reason']}")
            for dest_id, row in event["destinations"].items():
                lines.append(f"    {dest_id}:")
                for t in row.get("tags", []):
                    why = f" by {t['trigger']}" if t.get("trigger") else ""
                    lines.append(f"      tag {t['tag']}: {t['status'].replace('_', ' ')}{why}")
                for t in row.get("tasks", []):
                    via = f" (tag {t['tag']})" if t["tag"] else " (default mapping)"
                    lines.append(f"      -> send {t['event_name']}{via}")
                for o in row.get("outcomes", []):
                    via = f" (tag {o['tag']})" if o["tag"] else ""
                    lines.append(f"      {o['outcome']}: {o['reason']}{via}: {o['detail']}")
        for dest_id, rows in hit.get("rejected", {}).items():
            for x in rows:
                lines.append(f"  {dest_id}: rejected at send: {x['task']}: {x['reason']}: {x['detail']}")
        for dest_id, rows in hit.get("requests", {}).items():
            for r in rows:
                if "error" in r:
                    lines.append(f"  {dest_id}: cannot build the request: {r['error']}")
                    continue
                lines.append(f"  {dest_id}: {r['method']} {r['url']}")
                if payloads:
                    for k, v in r["headers"].items():
                        lines.append(f"    {k}: {v}")
                    body = json.dumps(r["body"], indent=2, ensure_ascii=False)
                    lines += ["    " + line for line in body.splitlines()]
        if not hit.get("requests"):
            lines.append("  nothing would be sent")
    return "\n".join(lines)
