"""The `tagpipe` command: run the local stack, check config, look at what happened."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from tagpipe.errors import ConfigError


def _load(path: str | None):
    from tagpipe.config import load_config

    return load_config(path)


def cmd_run(args: argparse.Namespace) -> int:
    from tagpipe.ops import local

    local.run(_load(args.config), host=args.host, port=args.port)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from tagpipe.ops.preview import placeholder_environ, placeholders_in

    config = _load(args.config)
    environ = placeholder_environ(config) if getattr(args, "fake_secrets", False) else None
    placeholders = placeholders_in(environ or {})
    entries = config.resolved_entries(environ)
    print(f"config OK: {config.source}")
    for e in entries.values():
        state = "enabled" if e.enabled else "disabled"
        secrets = ", ".join(f"{k}=***" for k in e.secrets) or "no secrets"
        print(f"  destination {e.id}: {e.type} ({state}; consent {e.consent or 'none'}; {secrets})")
    tagging = config.tagging()
    for dest_id, tags in tagging.by_destination.items():
        names = ", ".join(t.name + ("" if t.enabled else " (disabled)") for t in tags)
        print(f"  tags for {dest_id}: {names} (only firing tags send to it)")
    if tagging:
        print(f"  {len(tagging.tags)} tags, {len(tagging.triggers)} triggers, "
              f"{len(config.variables)} declared variables")
    for warning in tagging.warnings:
        print(f"  warning: {warning}")
    if placeholders:
        print(f"  secrets not set, placeholders used for this preview: {', '.join(placeholders)}")
    if getattr(args, "sample", None):
        return _preview(config, args, environ)
    return 0


def _preview(config, args: argparse.Namespace, environ: dict[str, str] | None) -> int:
    from tagpipe.errors import InvalidInput
    from tagpipe.ops.preview import load_samples, preview, render

    try:
        hits = load_samples(args.sample)
    except InvalidInput as exc:
        print(f"sample error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    report = preview(config, hits, environ)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render(report))
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    args.fake_secrets = not args.real_secrets
    return cmd_check(args)


def cmd_stats(args: argparse.Namespace) -> int:
    from tagpipe.storage.sqlite import SqliteStore

    config = _load(args.config)
    store = SqliteStore(config.storage.dir)
    counts = store.outcome_counts()
    print(json.dumps({f"{d}/{o}": n for (d, o), n in sorted(counts.items())}, indent=2))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tagpipe.ops.init import Answers, InitError, ask, parse_actions, run_init

    try:
        answers = Answers(meta_pixel=args.meta_pixel, ga4=args.ga4, google_account=args.google_account,
                          google_actions=parse_actions(args.google_action or []),
                          collect_url=args.collect_url or Answers.collect_url)  # fmt: skip
        if args.meta_token_env:
            answers.meta_token_env = args.meta_token_env
        if args.ga4_secret_env:
            answers.ga4_secret_env = args.ga4_secret_env
        if args.ask or (sys.stdin.isatty() and not args.no_input):
            answers = ask(answers, input)
        return run_init(answers, Path(args.output or args.config or "tagpipe.toml"), force=args.force,
                        test_sends=args.test_send, test_event_code=args.test_event_code)  # fmt: skip
    except InitError as exc:
        print(f"init: {exc}", file=sys.stderr)
        return 2
    except EOFError:
        print("init: no answer on the input; give the values as flags (tagpipe init --help)", file=sys.stderr)
        return 2


def cmd_trace(args: argparse.Namespace) -> int:
    """What happened to a hit, by any id it carries: each stage and each destination, and when."""
    from datetime import datetime

    from tagpipe.monitoring.dashboard import DashboardData
    from tagpipe.storage.sqlite import SqliteStore

    config = _load(args.config)
    data = DashboardData(SqliteStore(config.storage.dir),
                         destination_types={d: e.type for d, e in config.destination_entries().items()})  # fmt: skip
    found = data.lookup(args.id)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0 if found["hits"] else 1
    if not found["hits"]:
        print(f"nothing on record for {args.id!r} (hit id, event_id, transaction / order id or client id)")
        return 1

    def at(t: float | None) -> str:
        return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if t else "?"

    for hit in found["hits"]:
        raw = hit["raw"] or {}
        print(f"hit {hit['hit_id']}  received {at(hit['received_at'])}  {raw.get('source', '?')} "
              f"{raw.get('method', '')} {raw.get('path', '')}")
        for event in hit["events"]:
            print(f"  event {event['name']}  event_id {event['event_id']}")
            if not event["destinations"]:
                print("    no destination took it")
            for dest in event["destinations"]:
                outcome = dest["outcome"] or {}
                keys = ",".join((dest["task"] or {}).get("identifiers", [])) or "-"
                words = outcome.get("detail") if outcome.get("outcome") == "delivered" else outcome.get("text")
                print(f"    {dest['label']:<28} {outcome.get('outcome', 'in progress'):<14} {at(outcome.get('at'))}"
                      f"  match keys {keys}  {outcome.get('reason', '')}  {words or ''}".rstrip())
                for sent in (d for d in hit["deliveries"] if d["destination"] == dest["destination"]):
                    print(f"      attempt {sent['attempt']} {at(sent['at'])}: {sent['request']['method']} "
                          f"{sent['request']['url']} -> {sent['response']['status'] or 'no HTTP'} ({sent['verdict']})")
        for outcome in hit.get("hit_outcomes", []):
            print(f"  {outcome['label']}: {outcome['outcome']} {outcome['reason']} {at(outcome['at'])}  {outcome['text']}")
        for failure in hit["failures"]:
            print(f"  failed in {failure['stage']}: {failure['reason']} {at(failure['at'])}  {failure['text']}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """The dashboard and the debug view on their own: over the local store, or over BigQuery (the
    production store) with the user's own credentials (Application Default Credentials)."""
    from pydantic import ValidationError

    from tagpipe.errors import StoreUnavailable
    from tagpipe.monitoring.config import dashboard_port, load_monitoring_config
    from tagpipe.monitoring.dashboard import DashboardServer, create_dashboard_app
    from tagpipe.settings import Settings, secret

    config = _load(args.config)
    monitoring = load_monitoring_config(config)
    board = monitoring.dashboard.model_copy(update={
        "host": args.host or monitoring.dashboard.host, "token_env": args.token_env or monitoring.dashboard.token_env,
        "allowed_hosts": [*monitoring.dashboard.allowed_hosts, *args.allowed_host]})  # fmt: skip
    monitoring = monitoring.model_copy(update={"dashboard": board})
    state_dir = None
    if args.store == "bigquery":
        from tagpipe.storage.bigquery_dashboard import BigQueryDashboardStore, DashboardStoreConfig

        settings = Settings.load()
        try:
            store_config = DashboardStoreConfig(
                project=args.project or settings.gcp_project, dataset=args.dataset or settings.bq_dataset,
                location=args.location, lookback_days=args.lookback_days, cache_ttl=args.cache_ttl,
                max_bytes_billed=int(args.max_scan_gb * 2**30) if args.max_scan_gb else None)  # fmt: skip
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            print(f"dashboard: {problems} (--project or TAGPIPE_GCP_PROJECT names the project)", file=sys.stderr)
            return 2
        store = BigQueryDashboardStore(store_config)
        where = f"BigQuery {store_config.project}.{store_config.dataset}"
        try:
            store.check()
        except StoreUnavailable as exc:
            print(f"dashboard: {exc}", file=sys.stderr)
            return 2
    else:
        from tagpipe.storage.sqlite import SqliteStore

        store, state_dir = SqliteStore(config.storage.dir), config.storage.dir
        where = f"the local store {config.storage.dir}"
    # without a config file (the Cloud Run image) the destinations are the ones the store names
    types = {} if config.source == "<defaults>" else {d: e.type for d, e in config.destination_entries().items()}
    app = create_dashboard_app(store=store, monitoring=monitoring, state_dir=state_dir, destination_types=types)
    server = DashboardServer(app, board.host, args.port if args.port is not None else dashboard_port(monitoring),
                             token_set=bool(secret(board.token_env)))
    if not server.start():
        return 2
    print(f"tagpipe dashboard over {where}: http://{board.host}:{server.port} (Ctrl-C stops it)", file=sys.stderr)
    try:
        while server.thread is not None and server.thread.is_alive():
            server.thread.join(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        store.close()
    return 0


def cmd_test_send(args: argparse.Namespace) -> int:
    from tagpipe.ops.test_send import SampleNotSent, send_test_event
    from tagpipe.runtime import Runtime

    config = _load(args.config)
    try:
        report = send_test_event(Runtime(config, bus=None, store=None), args.destination,  # type: ignore[arg-type]
                                 test_event_code=args.test_event_code, live=args.live)  # fmt: skip
    except SampleNotSent as exc:
        print(f"test-send: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['label']}: {report['mode']}")
        if report.get("request"):
            print(f"  {report['request']['method']} {report['request']['url']}")
        if report.get("response"):
            print(f"  -> HTTP {report['response']['status']}: {report['response']['body'][:500]}")
        print(f"  {'OK' if report['ok'] else 'FAILED'} ({report['reason']}): {report['text']}")
    return 0 if report["ok"] else 1


def cmd_request_status(args: argparse.Namespace) -> int:
    """Google Data Manager's asynchronous verdicts: processing errors (duplicate gclid, consent, too old)
    come after the 200 that made the events 'delivered'."""
    import httpx

    from tagpipe.runtime import Runtime
    from tagpipe.storage.sqlite import SqliteStore

    config = _load(args.config)
    store = SqliteStore(config.storage.dir)
    runtime = Runtime(config, bus=None, store=store)  # type: ignore[arg-type]
    destination = runtime.destinations.get(args.destination)
    if destination is None or not hasattr(destination, "request_status"):
        print(f"request-status: {args.destination} is not a data_manager destination in the config", file=sys.stderr)
        return 2
    ids = list(args.request_id)
    if not ids:  # the latest requests the local store recorded for it
        rows = store.query("SELECT detail, MAX(at) FROM outcomes WHERE destination = ? AND outcome = 'delivered' "
                           "AND detail LIKE 'request_id %' GROUP BY detail ORDER BY 2 DESC", (args.destination,))
        ids = list(dict.fromkeys(detail.split()[1] for detail, _ in rows))[: args.recent]
    with httpx.Client() as client:
        statuses = [destination.request_status(client, request_id) for request_id in ids]
    print(json.dumps(statuses, indent=2))
    failed = any(s.get("error") or any(d.get("requestStatus") in ("FAILED", "PARTIAL_SUCCESS")
                                       for d in s.get("requestStatusPerDestination", [])) for s in statuses)  # fmt: skip
    return 1 if failed else 0


def _when(value: str | None, default: float) -> float:
    """A time bound: unix seconds, an ISO date/time, or a relative '24h' / '7d' / '30m' ago."""
    import time
    from datetime import datetime

    if not value:
        return default
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[-1] in units and value[:-1].isdigit():
        return time.time() - int(value[:-1]) * units[value[-1]]
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value).timestamp()


def _confirm_scan(args: argparse.Namespace) -> Callable[[str, int], bool]:
    """Show what a BigQuery query will scan (and cost); above --max-scan-gb, ask unless --yes."""
    from tagpipe.storage.bigquery_read import PRICE_PER_TIB, human_bytes, scan_cost

    limit = args.max_scan_gb * 2**30

    def confirm(what: str, scanned: int) -> bool:
        print(f"{what}: will scan {human_bytes(scanned)} in BigQuery (about ${scan_cost(scanned, 2):.4f}"
              f" on demand at ${PRICE_PER_TIB}/TiB)", file=sys.stderr)
        if scanned <= limit or args.yes:
            return True
        if not sys.stdin.isatty():
            print(f"{what}: more than --max-scan-gb {args.max_scan_gb:g}; pass --yes to run it", file=sys.stderr)
            return False
        return input("run it? [y/N] ").strip().lower() in ("y", "yes")

    return confirm


def _replay_run(args: argparse.Namespace, label: str):
    """Run replay_dead_letters or backfill over [--since, --until) with a progress bar."""
    import time

    from tagpipe.ops import replay
    from tagpipe.ops.preview import placeholder_environ
    from tagpipe.runtime import build_runtime

    # vendor tokens are used by deliver only (build_requests), never to route or republish: the
    # operator needs none of them, and on GCP no access to Secret Manager
    config = _load(args.config)
    rt = build_runtime(config, secrets=placeholder_environ(config))
    try:
        fn = replay.replay_dead_letters if label == "replay" else replay.backfill
        return fn(rt, args.destination, _when(args.since, 0.0), _when(args.until, time.time() + 1),
                  progress=replay.progress_bar(label), confirm=_confirm_scan(args))
    finally:
        rt.close()


def cmd_replay(args: argparse.Namespace) -> int:
    report = _replay_run(args, "replay")
    print(f"dead letters selected {report.selected}, queued {report.queued}, unreadable {report.skipped}"
          " (a running stack delivers them; already-delivered event_ids are not sent again)")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    report = _replay_run(args, "backfill")
    print(f"stored events {report.selected}, queued for {args.destination} {report.queued}, "
          f"not routed {report.skipped} (consent, tags or mapping)")
    return 0


def _scan_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-scan-gb", type=float, default=1.0,
                        help="BigQuery store: ask before a query that scans more (default 1 GiB)")
    parser.add_argument("--yes", action="store_true", help="BigQuery store: run whatever the scan")


def cmd_erase(args: argparse.Namespace) -> int:
    from tagpipe.ops.erase import erase

    config = _load(args.config)
    if not (args.email or args.user_id or args.client_id):
        print("erase: give --email, --user-id or --client-id", file=sys.stderr)
        return 2
    result = erase(config.storage.dir, email=args.email, user_id=args.user_id, client_id=args.client_id,
                   expand=not args.no_expand)
    print(json.dumps({"deleted": result.deleted, "client_ids": result.client_ids, "user_ids": result.user_ids},
                     indent=2))
    print("local store and queue only: delete the person at Meta, Google and TikTok too (docs/privacy.md)",
          file=sys.stderr)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from tagpipe.ops.erase import purge_older_than, retention_plan
    from tagpipe.privacy import privacy_config

    config = _load(args.config)
    days = args.days or retention_plan(privacy_config(config))  # --days: every table alike
    if not any(days.values() if isinstance(days, dict) else [days]):
        print("purge: give --days N or set [privacy] retention_days / raw_hits_retention_days", file=sys.stderr)
        return 2
    print(json.dumps(purge_older_than(config.storage.dir, days), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    from tagpipe.monitoring.logs import configure_from_environment

    configure_from_environment()
    parser = argparse.ArgumentParser(prog="tagpipe", description=__doc__)
    parser.add_argument("--config", help="config file (default: $TAGPIPE_CONFIG or ./tagpipe.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run collect + transform + deliver locally")
    run.add_argument("--host")
    run.add_argument("--port", type=int, help="default: $PORT, else server.port")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate the config file (and preview a sample hit)")
    check.add_argument("--sample", help="a RawHit JSON, a JSON-API event, a gtag query string or URL, or a file "
                       "holding one: print which tags fire and the exact vendor requests (nothing is sent)")
    check.add_argument("--fake-secrets", action="store_true",
                       help="use placeholders for secrets the environment lacks (they are masked anyway)")
    check.add_argument("--json", action="store_true", help="print the preview as JSON")
    check.set_defaults(func=cmd_check)
    prev = sub.add_parser("preview", help="check --sample, with placeholder secrets: tags fired and vendor payloads")
    prev.add_argument("sample", help="a RawHit JSON, a JSON-API event, a gtag query string or URL, or a file")
    prev.add_argument("--real-secrets", action="store_true", help="require the secret variables to be set")
    prev.add_argument("--json", action="store_true", help="print the preview as JSON")
    prev.set_defaults(func=cmd_preview)
    stats = sub.add_parser("stats", help="outcome counts from the local store")
    stats.set_defaults(func=cmd_stats)
    replay = sub.add_parser("replay", help="re-queue dead-lettered deliveries (after fixing the cause)")
    replay.add_argument("--destination", help="only this destination id")
    replay.add_argument("--since", help="unix seconds, ISO time, or 24h / 7d ago")
    replay.add_argument("--until")
    _scan_flags(replay)
    replay.set_defaults(func=cmd_replay)
    back = sub.add_parser("backfill", help="send stored events from a time range to one destination")
    back.add_argument("destination")
    back.add_argument("--since", required=True, help="unix seconds, ISO time, or 24h / 7d ago")
    back.add_argument("--until")
    _scan_flags(back)
    back.set_defaults(func=cmd_backfill)
    er = sub.add_parser("erase", help="delete one person's data from the local store and queue (docs/privacy.md)")
    er.add_argument("--email")
    er.add_argument("--user-id")
    er.add_argument("--client-id")
    er.add_argument("--no-expand", action="store_true",
                    help="only the given identifier, not the client/user ids seen with it")
    er.set_defaults(func=cmd_erase)
    ini = sub.add_parser("init", help="write a commented tagpipe.toml from a few answers, check it, print the site snippet")
    ini.add_argument("--meta-pixel", help="the Meta pixel / dataset id")
    ini.add_argument("--meta-token-env", help="the variable holding the Meta access token (META_ACCESS_TOKEN)")
    ini.add_argument("--ga4", help="the GA4 measurement id, G-XXXXXXX")
    ini.add_argument("--ga4-secret-env", help="the variable holding the GA4 api_secret (GA4_API_SECRET)")
    ini.add_argument("--google-account", help="the Google Ads account id, 123-456-7890")
    ini.add_argument("--google-action", action="append", metavar="EVENT=ACTION",
                     help="purchase=987654321 (Data Manager API) or purchase=customers/1/conversionActions/2 (Ads API)")
    ini.add_argument("--collect-url", help="where collect is served, for the site snippet")
    ini.add_argument("--output", help="the file to write (default: --config, else ./tagpipe.toml)")
    ini.add_argument("--force", action="store_true", help="replace an existing file")
    ini.add_argument("--ask", action="store_true", help="ask for what is missing, even without a terminal")
    ini.add_argument("--no-input", action="store_true", help="never ask")
    ini.add_argument("--test-send", action="store_true", help="then send a test event to each destination")
    ini.add_argument("--test-event-code", help="Meta / TikTok test event code for --test-send")
    ini.set_defaults(func=cmd_init)
    trace = sub.add_parser("trace", help="what happened to one hit: by hit id, event_id, order id or client id")
    trace.add_argument("id")
    trace.add_argument("--json", action="store_true", help="the dashboard's lookup document")
    trace.set_defaults(func=cmd_trace)
    dash = sub.add_parser("dashboard", help="the dashboard and debug view alone, over the local store or BigQuery")
    dash.add_argument("--store", choices=["sqlite", "bigquery"], default="sqlite",
                      help="sqlite: the local store of --config (default); bigquery: the production tables")
    dash.add_argument("--project", help="BigQuery: the project (default $TAGPIPE_GCP_PROJECT)")
    dash.add_argument("--dataset", help="BigQuery: the dataset (default $TAGPIPE_BQ_DATASET, else tagpipe)")
    dash.add_argument("--location", help="BigQuery: the dataset's location (EU, US, ...)")
    dash.add_argument("--lookback-days", type=float, default=7.0,
                      help="BigQuery: how far back the debug list and lookups read (default 7)")
    dash.add_argument("--cache-ttl", type=float, default=60.0, help="BigQuery: seconds an overview figure is reused")
    dash.add_argument("--max-scan-gb", type=float, help="BigQuery: refuse any one query that would bill more")
    dash.add_argument("--host", help="default: [monitoring.dashboard] host, 127.0.0.1")
    dash.add_argument("--port", type=int, help="default: $TAGPIPE_DASHBOARD_PORT, else [monitoring.dashboard] port")
    dash.add_argument("--token-env", help="the variable holding the access token (default TAGPIPE_DASHBOARD_TOKEN);"
                      " required off loopback")
    dash.add_argument("--allowed-host", action="append", default=[],
                      help="a Host name the dashboard answers to besides loopback (repeatable)")
    dash.set_defaults(func=cmd_dashboard)
    ts = sub.add_parser("test-send", help="send one sample event to a destination in the vendor's test mode")
    ts.add_argument("destination")
    ts.add_argument("--test-event-code", help="Meta / TikTok: the code from Events Manager's Test events tab")
    ts.add_argument("--live", action="store_true",
                    help="a vendor without a test mode (LinkedIn, Microsoft Ads): send anyway, recording a real conversion")
    ts.add_argument("--json", action="store_true")
    ts.set_defaults(func=cmd_test_send)
    status = sub.add_parser("request-status", help="Google Data Manager: the processing result of ingested requests")
    status.add_argument("destination", help="a data_manager destination id")
    status.add_argument("request_id", nargs="*", help="request ids (default: the latest ones the local store recorded)")
    status.add_argument("--recent", type=int, default=10, help="how many of the latest to check without ids")
    status.set_defaults(func=cmd_request_status)
    purge = sub.add_parser("purge", help="delete local records older than N days ([privacy] retention_days)")
    purge.add_argument("--days", type=int)
    purge.set_defaults(func=cmd_purge)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
