"""Tests for the shared "unknown name -> did you mean" error built by ddlsim.errors.unknown_name."""

import numpy as np
import pytest

from ddlsim.errors import MAX_LISTED_NAMES, ConfigError, DdlsimError, unknown_name

DEVICES = ("auto", "cpu", "gpu")


def test_close_match_names_field_value_and_suggestion():
    err = unknown_name("device", "gpux", DEVICES, "device")
    assert isinstance(err, ConfigError) and isinstance(err, DdlsimError)
    assert isinstance(err, ValueError)
    assert str(err) == "device: unknown device 'gpux'; did you mean 'gpu'?"


def test_default_what_is_name():
    assert str(unknown_name("workload.model", "resnet5", ["resnet50", "vgg16"])) == (
        "workload.model: unknown name 'resnet5'; did you mean 'resnet50'?")


def test_no_close_match_lists_known_names_in_order():
    err = unknown_name("algo", "zzz", ["ring", "tree", "ring"], "algo")
    assert str(err) == "algo: unknown algo 'zzz' (known: ring, tree)"


def test_nothing_known_gives_no_hint():
    assert str(unknown_name("f.yaml: a.b", "b", [], "key")) == "f.yaml: a.b: unknown key 'b'"


def test_non_string_values_are_shown_with_repr():
    assert str(unknown_name("device", None, DEVICES, "device")) == (
        "device: unknown device None (known: auto, cpu, gpu)")
    assert str(unknown_name("device", 0, DEVICES, "device")).startswith(
        "device: unknown device 0 (")


def test_matching_ignores_case_and_surrounding_space():
    assert str(unknown_name("algo", " RING ", ["ring", "tree"], "algo")) == (
        "algo: unknown algo ' RING '; did you mean 'ring'?")


def test_aliases_and_cutoff():
    known = ["h100-sxm", "a100-40gb"]
    # 'h10' vs 'h100-sxm': difflib ratio 2*3/(3+8) = 0.545, below the default 0.6 ...
    assert "(known: h100-sxm, a100-40gb)" in str(unknown_name("device", "h10", known))
    # ... but close to the alias 'h100' (ratio 6/7), which suggests the name it maps to
    assert str(unknown_name("device", "h10", known, aliases={"h100": "h100-sxm"})).endswith(
        "; did you mean 'h100-sxm'?")
    assert str(unknown_name("device", "h10", known, cutoff=0.5)).endswith(
        "; did you mean 'h100-sxm'?")


def test_long_lists_are_cut():
    names = [f"nic{i}.tx" for i in range(100)]
    msg = str(unknown_name("link", "zz", names, "link id"))
    assert msg.endswith(f", nic{MAX_LISTED_NAMES - 1}.tx, ... ({100 - MAX_LISTED_NAMES} more))")
    assert f"nic{MAX_LISTED_NAMES}.tx" not in msg


@pytest.mark.parametrize("field, value, known", [
    ("a\nb", "x\ny", ["p\nq", "r"]),
    ("arr", np.arange(40).reshape(4, 10), ["x"]),
    ("key", "", ["", "\t"]),
])
def test_message_is_one_line(field, value, known):
    msg = str(unknown_name(field, value, known, "thing\nkind"))
    assert "\n" not in msg and "\r" not in msg
    assert ": unknown thing kind " in msg


def test_odd_known_names_are_quoted():
    assert str(unknown_name("k", "zzzz", ["p\nq", "r"])) == (
        "k: unknown name 'zzzz' (known: 'p\\nq', r)")


def test_raising_it_gives_the_same_message():
    with pytest.raises(ConfigError, match=r"^mode: unknown mode 'sp'; did you mean 'ssp'\?$"):
        raise unknown_name("mode", "sp", ["async", "sync", "ssp"], "mode")
