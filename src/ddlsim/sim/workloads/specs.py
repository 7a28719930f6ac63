"""Workloads from plain layer dicts (:func:`from_layers`), e.g. read from a scenario file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.sim.workloads.graph import Workload, check_int
from ddlsim.sim.workloads.net import Net, start

#: Spec kinds :func:`from_layers` accepts, with their required and optional fields.
SPEC_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "conv": (("out_ch", "kernel"), ("in_ch", "stride", "pad", "bias", "name")),
    "linear": (("out",), ("in", "bias", "name")),
    "maxpool": (("kernel",), ("stride", "pad", "name")),
    "avgpool": (("kernel",), ("stride", "pad", "name")),
    "relu": ((), ("name",)),
    "gelu": ((), ("name",)),
    "bn": ((), ("name",)),
    "flatten": ((), ()),
    "softmax_xent": ((), ("name",)),
}


def _spec_int(where: str, spec: Mapping[str, object], key: str, default: int | None,
              minimum: int) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where}.{key}: must be an integer >= {minimum}, got {value!r}")
    return value


def _spec_bool(where: str, spec: Mapping[str, object], key: str) -> bool:
    value = spec.get(key, True)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: must be true or false, got {value!r}")
    return value


def _apply_spec(net: Net, i: int, spec: Mapping[str, object], counts: dict[str, int]) -> None:
    where = f"specs[{i}]"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: must be a mapping with a 'kind', got {spec!r}")
    kind = spec.get("kind")
    if kind not in SPEC_FIELDS:
        raise unknown_name(f"{where}.kind", kind, SPEC_FIELDS, "layer kind")
    required, optional = SPEC_FIELDS[kind]  # type: ignore[index]
    for key in spec:
        if key != "kind" and key not in required and key not in optional:
            raise unknown_name(f"{where}.{key}", key, required + optional, f"field for {kind}")
    for key in required:
        if key not in spec:
            raise ConfigError(f"{where}.{key}: required for kind {kind!r}, missing")
    counts[kind] = counts.get(kind, 0) + 1  # type: ignore[index]
    name = spec.get("name", f"{kind}{counts[kind]}")  # type: ignore[index]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: must be a non-empty string, got {name!r}")
    if kind == "flatten":
        net.shape = (net.numel(1),)
    elif kind == "conv":
        if len(net.shape) != 3:
            raise ConfigError(f"{where}.kind: conv needs an image input (c, h, w), "
                              f"got shape {net.shape}")
        if "in_ch" in spec and spec["in_ch"] != net.shape[0]:
            raise ConfigError(f"{where}.in_ch: must equal the incoming channels "
                              f"{net.shape[0]}, got {spec['in_ch']!r}")
        net.conv(name, _spec_int(where, spec, "out_ch", None, 1),
                 _spec_int(where, spec, "kernel", None, 1),
                 _spec_int(where, spec, "stride", 1, 1), _spec_int(where, spec, "pad", 0, 0),
                 _spec_bool(where, spec, "bias"))
    elif kind == "linear":
        features = net.numel(1)
        if "in" in spec and spec["in"] != features:
            raise ConfigError(f"{where}.in: must equal the incoming features {features}, "
                              f"got {spec['in']!r}")
        net.linear(name, _spec_int(where, spec, "out", None, 1), _spec_bool(where, spec, "bias"))
    elif kind in ("maxpool", "avgpool"):
        if len(net.shape) != 3:
            raise ConfigError(f"{where}.kind: {kind} needs an image input (c, h, w), "
                              f"got shape {net.shape}")
        kernel = _spec_int(where, spec, "kernel", None, 1)
        net.pool(name, kind[:3], kernel, _spec_int(where, spec, "stride", kernel, 1),
                 _spec_int(where, spec, "pad", 0, 0))
    elif kind in ("relu", "gelu"):
        net.elementwise(name, kind)  # type: ignore[arg-type]
    elif kind == "bn":
        if len(net.shape) != 3:
            raise ConfigError(f"{where}.kind: bn needs an image input (c, h, w), "
                              f"got shape {net.shape}")
        net.bn(name)
    else:
        net.softmax_xent(name)


def from_layers(name: str, batch: int, specs: Sequence[Mapping[str, object]],
                input_shape: Sequence[int], dtype: str = "float32") -> Workload:
    """Build a workload from plain dicts, one per layer, applied in order.

    ``input_shape``: one sample, ``(c, h, w)`` or ``(features,)``. Spec kinds and fields
    (:data:`SPEC_FIELDS`): ``conv`` (out_ch, kernel; in_ch checked if given, stride=1,
    pad=0, bias=True), ``linear`` (out; in checked if given, bias=True; flattens its
    input), ``maxpool``/``avgpool`` (kernel; stride=kernel, pad=0), ``relu``, ``gelu``,
    ``bn``, ``flatten``, ``softmax_xent``. Every spec may carry a ``name`` (default
    ``kind`` + running number). A softmax cross-entropy loss is appended when the list
    does not end with one. Bad specs raise ConfigError naming ``specs[i].field``.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name: must be a non-empty string, got {name!r}")
    shape = tuple(input_shape)
    if len(shape) not in (1, 3):
        raise ConfigError(f"input_shape: must be (c, h, w) or (features,), got {shape}")
    for i, d in enumerate(shape):
        check_int(f"input_shape[{i}]", d)
    if isinstance(specs, Mapping | str) or not specs:
        raise ConfigError(f"specs: must be a non-empty list of layer dicts, got {specs!r}")
    net = start(batch, shape, dtype)
    counts: dict[str, int] = {}
    for i, spec in enumerate(specs):
        before = len(net.layers)
        _apply_spec(net, i, spec, counts)
        if len(net.layers) > before and any(lay.name == net.layers[-1].name
                                            for lay in net.layers[:-1]):
            raise ConfigError(f"specs[{i}].name: must be unique, "
                              f"{net.layers[-1].name!r} is already used")
        if net.layers and net.layers[-1].kind == "softmax_xent" and i != len(specs) - 1:
            raise ConfigError(f"specs[{i}].kind: softmax_xent must be the last layer, "
                              f"got it at index {i} of {len(specs)}")
    if not net.layers or net.layers[-1].kind != "softmax_xent":
        net.softmax_xent("loss")
    return net.workload(name, shape, dtype)
