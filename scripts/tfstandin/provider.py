"""A stand-in `hashicorp/google` provider: the real provider's schema over Terraform's plugin protocol, no API calls.

    terraform-provider-google (a launcher scripts/tfstandin/standin.py writes) -> python provider.py SCHEMA.json

Terraform itself then does what it does with the real provider: init installs it (from a filesystem
mirror), validate type-checks every expression against the schema, plan evaluates the whole graph
(for_each keys, references to exported attributes, modules) and asks this provider to plan each
resource. PyPI's `tf` (hfern/tf) speaks the go-plugin handshake and tfplugin6 over gRPC; its own
Resource classes cannot express list-nested blocks or object types, so the servicer below answers the
schema and plan calls from the extracted JSON itself (and tf.provider.ProviderServicer is swapped for it
before tf.runner.run_provider builds the server).

What it does as the provider would (scripts/tfschema/rules.py, each rule cited):
- ValidateResourceConfig: the provider's own ValidateFunc/ConflictsWith/ExactlyOneOf for our resources;
- PlanResourceChange: computed values unknown ("known after apply"), except what the provider knows at
  plan time (google_service_account email and member since 6.13, the provider's default project);
- ApplyResourceChange: refused. It plans only.
The binding's schema cannot tell optional from optional+computed, so every optional attribute is served
as optional+computed: one left unset plans unknown, as a computed one would (the cautious reading).
Data sources return placeholders (there is no project to read): google_project.number is 000000000000.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.tfschema import rules  # noqa: E402

NO_APPLY = (
    "the stand-in google provider only plans",
    "This is scripts/tfstandin: hashicorp/google's schema without an API behind it. Apply with the real "
    "provider and credentials (make deploy).",
)
DATA_PLACEHOLDERS = {("google_project", "number"): "000000000000"}


def _pb_block(pb, block: dict):
    attributes = []
    for name, attr in sorted(block.get("attributes", {}).items()):
        required = bool(attr.get("required"))
        computed_only = bool(attr.get("computed")) and not attr.get("optional")
        attributes.append(
            pb.Schema.Attribute(
                name=name,
                type=json.dumps(attr["type"]).encode(),
                required=required,
                optional=not required and not computed_only,
                computed=not required,
            )
        )
    modes = {"list": pb.Schema.NestedBlock.LIST, "set": pb.Schema.NestedBlock.SET, "single": pb.Schema.NestedBlock.SINGLE}
    block_types = [
        pb.Schema.NestedBlock(
            type_name=name,
            block=_pb_block(pb, spec["block"]),
            nesting=modes[spec["nesting_mode"]],
            min_items=spec.get("min_items", 0),
            max_items=spec.get("max_items", 0),
        )
        for name, spec in sorted(block.get("block_types", {}).items())
    ]
    return pb.Schema.Block(attributes=attributes, block_types=block_types)


def plan_unknowns(value: dict | None, block: dict, unknown: Any) -> dict | None:
    """The proposed new state with every unset non-required attribute unknown, block by block."""
    if value is None or value is unknown:
        return value
    out = dict(value)
    for name, attr in block.get("attributes", {}).items():
        if out.get(name) is None and not attr.get("required"):
            out[name] = unknown
    for name, spec in block.get("block_types", {}).items():
        nested = out.get(name)
        if isinstance(nested, list):
            out[name] = [plan_unknowns(v, spec["block"], unknown) for v in nested]
        elif isinstance(nested, dict):
            out[name] = plan_unknowns(nested, spec["block"], unknown)
    return out


def for_rules(value: Any, unknown: Any) -> Any:
    """tf's decoded values in rules.violations' shape (its Unknown -> rules.UNKNOWN)."""
    if value is unknown:
        return rules.UNKNOWN
    if isinstance(value, dict):
        return {k: for_rules(v, unknown) for k, v in value.items()}
    if isinstance(value, list):
        return [for_rules(v, unknown) for v in value]
    return value


def placeholder(cty: Any) -> Any:
    if cty == "string":
        return "stand-in"
    if cty == "number":
        return 0
    if cty == "bool":
        return False
    if isinstance(cty, list) and cty[0] in ("list", "set"):
        return []
    if isinstance(cty, list) and cty[0] == "map":
        return {}
    return None


def make_servicer(schema: dict):
    from tf.gen import tfplugin_pb2 as pb
    from tf.provider import ProviderServicer
    from tf.types import Unknown
    from tf.utils import Diagnostics, read_dynamic_value, to_dynamic_value

    resources = schema["resource_schemas"]
    data_sources = schema["data_source_schemas"]

    class StandinServicer(ProviderServicer):
        provider_project: Any = None

        def GetProviderSchema(self, request, context):
            meta = pb.Schema(block=pb.Schema.Block())
            return pb.GetProviderSchema.Response(
                provider=pb.Schema(block=_pb_block(pb, schema["provider"]["block"])),
                provider_meta=meta,
                resource_schemas={t: pb.Schema(block=_pb_block(pb, s["block"])) for t, s in resources.items()},
                data_source_schemas={t: pb.Schema(block=_pb_block(pb, s["block"])) for t, s in data_sources.items()},
            )

        def ValidateProviderConfig(self, request, context):
            return pb.ValidateProviderConfig.Response()

        def ConfigureProvider(self, request, context):
            config = read_dynamic_value(request.config) or {}
            StandinServicer.provider_project = config.get("project")
            return pb.ConfigureProvider.Response()

        def ValidateResourceConfig(self, request, context):
            diags = Diagnostics()
            config = for_rules(read_dynamic_value(request.config), Unknown)
            for message in rules.violations(request.type_name, config or {}):
                diags.add_error(f"{request.type_name}: {message}")
            return pb.ValidateResourceConfig.Response(diagnostics=diags.to_pb())

        def ValidateDataResourceConfig(self, request, context):
            return pb.ValidateDataResourceConfig.Response()

        def PlanResourceChange(self, request, context):
            block = resources[request.type_name]["block"]
            proposed = read_dynamic_value(request.proposed_new_state)
            prior = read_dynamic_value(request.prior_state)
            if proposed is None:  # destroy
                return pb.PlanResourceChange.Response(planned_state=request.proposed_new_state)
            if prior is not None:  # an update: nothing here ever has state, but answer as the SDK would
                return pb.PlanResourceChange.Response(planned_state=request.proposed_new_state)
            config = for_rules(proposed, Unknown)
            known = rules.planned_values(request.type_name, config, StandinServicer.provider_project)
            planned = plan_unknowns(proposed, block, Unknown)
            planned.update({k: v for k, v in known.items() if k in planned})
            return pb.PlanResourceChange.Response(planned_state=to_dynamic_value(planned))

        def ApplyResourceChange(self, request, context):
            diags = Diagnostics().add_error(*NO_APPLY)
            return pb.ApplyResourceChange.Response(diagnostics=diags.to_pb())

        def ReadResource(self, request, context):
            return pb.ReadResource.Response(new_state=request.current_state)

        def ReadDataSource(self, request, context):
            block = data_sources[request.type_name]["block"]
            state = dict(read_dynamic_value(request.config) or {})
            for name, attr in block.get("attributes", {}).items():
                if state.get(name) is None and not attr.get("required"):
                    state[name] = DATA_PLACEHOLDERS.get((request.type_name, name), placeholder(attr["type"]))
            if state.get("id") in (None, "stand-in"):
                state["id"] = f"stand-in/{request.type_name}"
            return pb.ReadDataSource.Response(state=to_dynamic_value(state))

    return StandinServicer


class _App:
    """What tf.runner.run_provider reads off the provider object itself."""

    def full_name(self) -> str:
        return "registry.terraform.io/hashicorp/google"


def main(argv: list[str]) -> None:
    schema = json.loads(Path(argv[1]).read_text())
    import tf.provider
    from tf.runner import run_provider

    tf.provider.ProviderServicer = make_servicer(schema)
    run_provider(_App(), argv[2:] or [argv[0]])


if __name__ == "__main__":
    main(sys.argv)
