"""Config errors name the file, the line, the key path and the fix."""

from __future__ import annotations

import textwrap

import pytest

from tagpipe.config import load_config
from tagpipe.errors import ConfigError
from tagpipe.tagging import line_of

BASE = """\
[destinations.meta]
type = "log"

[destinations.ads]
type = "log"

[triggers.purchase]
event = "purchase"
"""


def load(tmp_path, text: str):
    path = tmp_path / "tagpipe.toml"
    path.write_text(BASE + textwrap.dedent(text))
    return load_config(path)


def error(tmp_path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


def line_in(tmp_path, needle: str) -> int:
    lines = (tmp_path / "tagpipe.toml").read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if needle in line)


def test_unknown_trigger_with_did_you_mean_and_line(tmp_path):
    e = error(tmp_path, """
        [tags.high_value]
        destination = "meta"
        triggers = ["purchse"]
    """)
    assert e.key == "tags.high_value.triggers[0]"
    assert "unknown trigger 'purchse'" in e.message
    assert e.fix == "did you mean 'purchase'?"
    assert e.source == f"{tmp_path / 'tagpipe.toml'}:{line_in(tmp_path, 'purchse')}"
    assert str(e).endswith("tags.high_value.triggers[0]: unknown trigger 'purchse'. Fix: did you mean 'purchase'?")


def test_unknown_trigger_in_a_multi_line_list_points_at_its_line(tmp_path):
    e = error(tmp_path, """
        [tags.t]
        destination = "meta"
        triggers = [
          "purchase",
          "nothing_like_it",
        ]
    """)
    assert e.key == "tags.t.triggers[1]"
    assert e.source.endswith(f":{line_in(tmp_path, 'nothing_like_it')}")
    assert "define [triggers.nothing_like_it]" in e.fix


def test_unknown_blocking_trigger(tmp_path):
    e = error(tmp_path, """
        [tags.t]
        destination = "meta"
        triggers = ["purchase"]
        blocking_triggers = ["internal"]
    """)
    assert e.key == "tags.t.blocking_triggers[0]"


def test_unknown_tag_key(tmp_path):
    e = error(tmp_path, """
        [tags.t]
        destinaton = "meta"
        triggers = ["purchase"]
    """)
    assert e.key == "tags.t.destinaton"
    assert e.message == "unknown tag key"
    assert e.fix == "did you mean 'destination'?"
    assert e.source.endswith(f":{line_in(tmp_path, 'destinaton')}")


def test_unknown_destination(tmp_path):
    e = error(tmp_path, """
        [tags.t]
        destination = "metta"
        triggers = ["purchase"]
    """)
    assert e.key == "tags.t.destination"
    assert "unknown destination 'metta'" in e.message and e.fix == "did you mean 'meta'?"


def test_missing_destination_and_triggers(tmp_path):
    assert error(tmp_path, '[tags.t]\ntriggers = ["purchase"]\n').key == "tags.t.destination"
    assert error(tmp_path, '[tags.t]\ndestination = "meta"\n').key == "tags.t.triggers"
    assert error(tmp_path, '[tags.t]\ndestination = "meta"\ntriggers = []\n').key == "tags.t.triggers"


def test_unknown_variable_in_trigger_and_in_params(tmp_path):
    e = error(tmp_path, """
        [variables.aov_tier]
        type = "constant"
        value = "x"

        [triggers.t]
        var = "aov_teir"
        equals = "high"
    """)
    assert e.key == "triggers.t.var" and "unknown variable 'aov_teir'" in e.message
    assert e.fix == "did you mean 'aov_tier'?"
    e = error(tmp_path, """
        [variables.aov_tier]
        type = "constant"
        value = "x"

        [tags.t]
        destination = "meta"
        triggers = ["purchase"]
        params = { tier = "{{aov_teir}}" }
    """)
    assert e.key == "tags.t.params.tier" and e.fix == "did you mean 'aov_tier'?"
    assert e.source.endswith(f":{line_in(tmp_path, 'aov_teir')}")


def test_unknown_variable_in_event_name_template(tmp_path):
    e = error(tmp_path, """
        [tags.t]
        destination = "meta"
        triggers = ["purchase"]
        event_name = "Buy_{{curency}}"
    """)
    assert e.key == "tags.t.event_name" and e.fix == "did you mean 'currency'?"


@pytest.mark.parametrize(
    ("ref", "message", "fix"),
    [
        ("consent.ad_storag", "unknown consent purpose 'ad_storag'", "did you mean 'ad_storage'?"),
        ("item.item_categroy", "unknown item field 'item_categroy'", "did you mean 'item_category'?"),
        ("click_id.glcid", "unknown click id 'glcid'", "did you mean 'gclid'?"),
        ("param.", "param. needs a name after the dot", "e.g. param.<name>"),
        ("prams.coupon", "unknown variable 'prams.coupon'", "did you mean 'param.coupon'?"),
        ("valeu", "unknown variable 'valeu'", "did you mean 'value'?"),
    ],
)
def test_bad_prefixed_reference(tmp_path, ref, message, fix):
    e = error(tmp_path, f'[triggers.t]\nvar = "{ref}"\nexists = true\n')
    assert (e.key, e.message, e.fix) == ("triggers.t.var", message, fix)


def test_bad_regex_in_trigger(tmp_path):
    e = error(tmp_path, """
        [triggers.t]
        var = "page_path"
        regex = '^/products/(['
    """)
    assert e.key == "triggers.t.regex"
    assert e.message.startswith("invalid regular expression:")
    assert e.source.endswith(f":{line_in(tmp_path, 'regex =')}")


def test_bad_regex_in_a_nested_condition(tmp_path):
    e = error(tmp_path, """
        [triggers.t]
        all = [
          { event = "purchase" },
          { any = [ { var = "page_path", equals = "/" }, { var = "page_path", regex = "(unclosed" } ] },
        ]
    """)
    assert e.key == "triggers.t.all[1].any[1].regex"


def test_bad_regex_in_regex_table_points_at_the_rule(tmp_path):
    e = error(tmp_path, """
        [variables.section]
        type = "regex"
        input = "page_path"
        rules = [
          { pattern = '^/ok', output = "ok" },
          { pattern = '*bad', output = "bad" },
        ]
    """)
    assert e.key == "variables.section.rules[1].pattern"
    assert e.source.endswith(f":{line_in(tmp_path, '*bad')}")


def test_capture_group_out_of_range(tmp_path):
    e = error(tmp_path, """
        [variables.section]
        type = "regex"
        input = "page_path"
        rules = [{ pattern = '^/(\\w+)', output = "$2" }]
    """)
    assert e.key == "variables.section.rules[0].output" and "capture group 2" in e.message


def test_variable_cycle(tmp_path):
    e = error(tmp_path, """
        [variables.a]
        type = "lookup"
        input = "b"
        map = { x = "y" }

        [variables.b]
        type = "template"
        template = "{{c}}-1"

        [variables.c]
        type = "regex"
        input = "a"
        rules = [{ pattern = "x", output = "y" }]
    """)
    assert "variable cycle: a -> b -> c -> a" in e.message
    assert e.key == "variables.c.input"
    line = line_in(tmp_path, 'input = "a"')
    assert e.source.endswith(f":{line}")


def test_self_reference(tmp_path):
    e = error(tmp_path, '[variables.a]\ntype = "url"\ninput = "a"\n')
    assert e.message == "variable cycle: a -> a"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('[variables.v]\nname = "x"\n', "variables.v.type", "required key is missing"),
        ('[variables.v]\ntype = "lookupp"\n', "variables.v.type", "unknown variable type 'lookupp'"),
        ('[variables.v]\ntype = "param"\n', "variables.v.name", "required key is missing"),
        ('[variables.v]\ntype = "param"\nname = "x"\nfield = "y"\n', "variables.v.field", "unknown key for a param variable"),
        ('[variables.value]\ntype = "param"\nname = "x"\n', "variables.value", "'value' is a built-in variable"),
        ('[variables."my var"]\ntype = "param"\nname = "x"\n', "variables.my var", "a variable name must be letters, digits and _ (no dots or spaces)"),
        ('[variables.v]\ntype = "item"\naggregate = "sum"\n', "variables.v.field", "required key is missing"),
        ('[variables.v]\ntype = "item"\nfield = "sku"\n', "variables.v.field", "unknown item field 'sku'"),
        ('[variables.v]\ntype = "item"\nfield = "item_id"\naggregate = "avg"\n', "variables.v.aggregate", "unknown aggregate 'avg'"),
        ('[variables.v]\ntype = "url"\npart = "hostname"\n', "variables.v.part", "unknown URL part 'hostname'"),
        ('[variables.v]\ntype = "url"\npart = "query_param"\n', "variables.v.name", "required key is missing"),
        ('[variables.v]\ntype = "event"\nfield = "valeu"\n', "variables.v.field", "unknown event field 'valeu'"),
        ('[variables.v]\ntype = "lookup"\ninput = "event_name"\nmap = {}\n', "variables.v.map", "must be a non-empty table of input -> output"),
        ('[variables.v]\ntype = "range"\ninput = "value"\nrules = [{ below = 10, output = "a" }, { below = 5, output = "b" }]\n',
         "variables.v.rules[1].below", "bounds must increase from one rule to the next"),
        ('[variables.v]\ntype = "param"\nname = "x"\nformat = "title"\n', "variables.v.format", "unknown format 'title'"),
        ('[triggers.t]\nvar = "value"\n', "triggers.t.var", "a var condition needs an operator"),
        ('[triggers.t]\ngt = 5\n', "triggers.t.gt", "operator gt needs var"),
        ('[triggers.t]\nvar = "value"\ngt = "200"\n', "triggers.t.gt", "gt compares numbers"),
        ('[triggers.t]\nvar = "country"\nin = "DE"\n', "triggers.t.in", "must be a non-empty list"),
        ('[triggers.t]\nvar = "country"\nexists = "yes"\n', "triggers.t.exists", "must be true or false"),
        ('[triggers.t]\nvar = "country"\nequal = "DE"\n', "triggers.t.equal", "unknown condition key"),
        ('[triggers.t]\ndescription = "nothing"\n', "triggers.t", "has no condition"),
        ('[triggers.t]\nall = []\n', "triggers.t.all", "must be a non-empty list of conditions"),
        ('[triggers.t]\nany = ["purchase"]\n', "triggers.t.any[0]", "a condition must be a table"),
        ('[triggers.t]\nevent = 5\n', "triggers.t.event", 'must be an event name, a list of them, or "*"'),
        ('[tags.t]\ndestination = "meta"\ntriggers = ["purchase"]\nenabled = "no"\n', "tags.t.enabled", "must be true or false"),
        ('[tags.t]\ndestination = "meta"\ntriggers = ["purchase"]\nparams = ["a"]\n', "tags.t.params", "must be a table of param -> value"),
        ('[tags.t]\ndestination = "meta"\ntriggers = ["purchase"]\nevent_name = ""\n', "tags.t.event_name", "must be a non-empty string"),
    ],
)
def test_schema_errors(tmp_path, text, key, message):
    e = error(tmp_path, text)
    assert (e.key, e.message) == (key, message)
    assert e.source.startswith(str(tmp_path / "tagpipe.toml"))


def test_did_you_mean_for_condition_keys(tmp_path):
    e = error(tmp_path, '[triggers.t]\nvar = "country"\nstartswith = "D"\n')
    assert e.fix == "did you mean 'starts_with'?"


def test_event_name_checked_per_destination_type(tmp_path):
    text = """
[destinations.g]
type = "google_ads"
customer_id = "123-456-7890"
[destinations.a]
type = "ga4"
measurement_id = "G-ABC"
[triggers.p]
event = "purchase"
"""
    env = {"GOOGLE_ADS_DEVELOPER_TOKEN": "x", "GOOGLE_ADS_CLIENT_ID": "x", "GOOGLE_ADS_CLIENT_SECRET": "x",
           "GOOGLE_ADS_REFRESH_TOKEN": "x", "GA4_API_SECRET": "x"}  # fmt: skip
    path = tmp_path / "c.toml"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        path.write_text(text + '[tags.t]\ndestination = "g"\ntriggers = ["p"]\nevent_name = "Purchase"\n')
        with pytest.raises(ConfigError, match="conversion action"):
            load_config(path)
        path.write_text(text + '[tags.t]\ndestination = "a"\ntriggers = ["p"]\nevent_name = "session_start"\n')
        with pytest.raises(ConfigError, match="GA4 refuses this event name"):
            load_config(path)
        path.write_text(text + '[tags.t]\ndestination = "g"\ntriggers = ["p"]\nevent_name = "customers/1234567890/conversionActions/1"\n')
        assert load_config(path).tagging().tags["t"].destination == "g"


def test_params_on_a_destination_that_sends_none_is_a_warning(tmp_path):
    config = load(tmp_path, '[tags.t]\ndestination = "meta"\ntriggers = ["purchase"]\nparams = { a = 1 }\n')
    [warning] = config.tagging().warnings
    assert "tags.t.params: not sent to meta" in warning


def test_a_disabled_tag_is_still_checked(tmp_path):
    e = error(tmp_path, '[tags.t]\ndestination = "meta"\ntriggers = ["nope"]\nenabled = false\n')
    assert e.key == "tags.t.triggers[0]"


def test_destination_errors_now_carry_the_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 8080\n\n[destinations.meta]\ntype = "meta"\npixel = "1"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)  # a missing key: the line of its table
    assert info.value.key == "destinations.meta.pixel_id" and info.value.source == f"{path}:4"
    path.write_text('[destinations.meta]\ntype = "meta"\npixel_id = "1"\npixel = "1"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "destinations.meta.pixel" and info.value.source == f"{path}:4"
    path.write_text('[server]\nprot = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "server.prot" and info.value.source == f"{path}:2"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tags.a.triggers[0]", 3),
        ("tags.a", 1),
        ("tags.b.params.x", 7),
        ("variables.v.rules[1].pattern", 12),
        ("variables.v.rules[0].output", 11),
        ("tags.missing", None),
        ('tags."quoted name".destination', 15),
        ("tags.quoted name.destination", 15),
    ],
)
def test_line_of(path, expected):
    text = """[tags.a]
destination = "meta"
triggers = ["x"]

[tags.b]
destination = "meta"
params = { x = "{{y}}" }

[variables.v]  # comment
rules = [
  { pattern = "a", output = "1" },
  { pattern = "b", output = "2" },
]
[tags."quoted name"]
destination = "x"
"""
    assert line_of(text, path) == expected


def test_line_of_ignores_comments_and_finds_the_offending_value():
    text = '[tags.a]\n# triggers = ["old"]\ndestination = "m"  # triggers = 1\ntriggers = [\n  "x",\n  "y#z",\n]\n'
    assert line_of(text, "tags.a.triggers") == 4
    assert line_of(text, "tags.a.triggers[1]", value="y#z") == 6
