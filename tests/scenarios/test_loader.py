"""Scenario loading: every built-in loads; every error is one ConfigError line naming the
file, the field path and the rule; nothing else ever escapes."""

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddlsim.errors import ConfigError
from ddlsim.scenarios import builtin_names, load_scenario
from ddlsim.scenarios.loader import parse_scenario

MINIMAL = {"name": "t", "workload": {"model": "resnet50"}, "strategies": [{"kind": "allreduce"}]}


def dump(doc) -> str:
    return yaml.safe_dump(doc)


def with_(path: str, value):
    """MINIMAL with one field set, by dotted path."""
    import copy

    doc = copy.deepcopy(MINIMAL)
    keys = path.split(".")
    node = doc
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    node[keys[-1]] = value
    return doc


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_loads(name):
    sc, label = load_scenario(name)
    assert sc.name == name and name in label


def test_defaults_are_filled_in():
    sc = parse_scenario(dump(MINIMAL))
    assert sc.cluster.preset == "dgx-a100" and sc.cluster.gpus == 8
    assert sc.strategies[0].bucket_MB == 25.0 and sc.seed == 0


@pytest.mark.parametrize("doc, message", [
    (with_("workload.model", "resnet5"), "f.yaml: workload.model: unknown name 'resnet5'; "
                                         "did you mean 'resnet50'?"),
    (with_("cluster.preset", "dgx-a10"), "f.yaml: cluster.preset: unknown name 'dgx-a10'; "
                                         "did you mean 'dgx-a100'?"),
    (with_("workload.batch_per_gpu", -3), "f.yaml: workload.batch_per_gpu: Input should be "
                                          "greater than 0; got -3"),
    (with_("strategies.0.bucket_mb", 3), "f.yaml: strategies.0.bucket_mb: unknown key "
                                         "'bucket_mb'; did you mean 'bucket_MB'?"),
    (with_("strategies.0.kind", "allreduc"), "f.yaml: strategies.0.kind: unknown strategy "
                                             "kind 'allreduc'; did you mean 'allreduce'?"),
    (with_("faults.slow_gpu", {1: 2.0}), "f.yaml: faults.slow_gpu: unknown key 'slow_gpu'; "
                                         "did you mean 'slow_gpus'?"),
    (with_("noise.cv", math.nan), "f.yaml: noise.cv: Input should be a finite number"),
    (with_("strategies", []), "f.yaml: strategies: List should have at least 1 item"),
    ({"name": "t"}, "f.yaml: workload: Field required"),
])
def test_errors_name_file_field_rule_and_value(doc, message):
    with pytest.raises(ConfigError) as exc:
        parse_scenario(dump(doc), "f.yaml")
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("text, message", [
    ("name: [x\n", "f.yaml: invalid YAML at line 2"),
    ("- 1\n- 2\n", "f.yaml: (top level): must be a mapping"),
    ("x: " + "[" * 3000 + "]" * 3000, "f.yaml: invalid YAML"),
])
def test_malformed_documents(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scenario(text, "f.yaml")


def test_unknown_file_and_name():
    with pytest.raises(ConfigError, match="scenario file not found"):
        load_scenario("/nonexistent/s.yaml")
    with pytest.raises(ConfigError, match="did you mean 'resnet50-dp-scaling'"):
        load_scenario("resnet50-dp-scalin")


def test_duplicate_strategy_names_are_rejected():
    doc = with_("strategies", [{"kind": "allreduce", "name": "a"},
                               {"kind": "allreduce", "name": "a"}])
    with pytest.raises(ConfigError, match="repeated: a"):
        parse_scenario(dump(doc), "f.yaml")


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats()
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["name", "workload", "workload.model", "workload.batch_per_gpu",
                             "cluster", "cluster.gpus", "strategies", "strategies.0.algo",
                             "strategies.0.bucket_MB", "noise", "noise.cv", "faults.slow_gpus",
                             "iterations", "seed", "extra_key"]),
       value=yaml_values)
def test_any_value_anywhere_loads_or_is_a_config_error(path, value):
    try:
        parse_scenario(dump(with_(path, value)), "f.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("f.yaml: ") and "\n" not in str(exc)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_text_loads_or_is_a_config_error(text):
    try:
        parse_scenario(text, "f.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc)
