"""Load and validate scenario files.

Every error is a :class:`ddlsim.errors.ConfigError` with one line naming the file, the
field path, the rule and the value; an unknown key or name suggests the closest valid one.
Nothing is simulated from an invalid file: names (model, cluster preset) are resolved here.
"""

from __future__ import annotations

import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ddlsim.errors import ConfigError, unknown_name
from ddlsim.scenarios.schema import Scenario

LIBRARY = "ddlsim.scenarios.library"
MAX_FILE_BYTES = 1_000_000


def builtin_names() -> list[str]:
    """Names of the scenarios installed with the package."""
    files = resources.files(LIBRARY).iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def _read(source: str | Path) -> tuple[str, str]:
    """Return ``(label, text)`` for a file path or a built-in scenario name."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ConfigError(f"{path}: file is larger than {MAX_FILE_BYTES} bytes")
            return str(path), path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: scenario file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read scenario file ({exc})") from None
    names = builtin_names()
    if str(source) not in names:
        raise unknown_name("scenario", str(source), names, "file or built-in scenario")
    text = resources.files(LIBRARY).joinpath(f"{source}.yaml").read_text(encoding="utf-8")
    return f"<built-in {source}>", text


def scenario_text(source: str | Path) -> str:
    """The YAML text of a scenario file or built-in name (for ``scenarios show``)."""
    return _read(source)[1]


def _models_in(annotation: Any, depth: int = 0) -> list[type[BaseModel]]:
    """Every pydantic model class inside an annotation (Optional, list, union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if depth > 8:
        return []
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg, depth + 1)]


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class reached by following ``loc`` from ``model``; a union of
    strategy models is resolved by the tag pydantic puts in the location."""
    candidates = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged = [m for m in candidates if _tag(m) == part]
        if tagged:
            candidates = tagged
            continue
        if len(candidates) != 1 or str(part) not in candidates[0].model_fields:
            return None
        candidates = _models_in(candidates[0].model_fields[str(part)].annotation)
    return candidates[0] if len(candidates) == 1 else None


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    args = typing.get_args(field.annotation) if field else ()
    return args[0] if len(args) == 1 else None


def _part(p: object) -> str:
    """A path component fit for a one-line message (odd keys are quoted)."""
    text = str(p)
    return text if text.isprintable() and text and "." not in text else repr(text)


def _format_error(label: str, err: dict) -> str:
    loc = tuple(err.get("loc", ()))
    tags = {_tag(m) for m in _models_in(Scenario.model_fields["strategies"].annotation)}
    path = ".".join(_part(p) for p in loc if p not in tags) or "(top level)"
    value = err.get("input")
    if err.get("type") == "extra_forbidden":
        parent = _model_at(Scenario, loc[:-1])
        known = list(parent.model_fields) if parent else []
        return str(unknown_name(f"{label}: {path}", loc[-1], known, "key"))
    if err.get("type") == "union_tag_invalid":
        ctx = err.get("ctx", {})
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t]
        return str(unknown_name(f"{label}: {path}.kind", ctx.get("tag"), tags, "strategy kind"))
    msg = " ".join(str(err.get("msg", "invalid")).removeprefix("Value error, ").split())
    if err.get("type") == "value_error" and isinstance(value, dict):
        return f"{label}: {path}: {msg}"  # a rule across fields: the message names them
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{label}: {path}: {msg}; got {shown}"


def _check_names(label: str, sc: Scenario) -> None:
    """Resolve names against the registries so typos fail at load time."""
    from ddlsim.sim.topology import PRESETS
    from ddlsim.sim.workloads import list_workloads

    def suggest(field: str, value: str, known: list[str]) -> None:
        if value not in known:
            raise unknown_name(f"{label}: {field}", value, known)

    suggest("workload.model", sc.workload.model, list_workloads())
    suggest("cluster.preset", sc.cluster.preset, list(PRESETS))


def parse_scenario(text: str, label: str = "<scenario>") -> Scenario:
    """Validate YAML ``text``; ``label`` names the file in error messages."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{label}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{label}: invalid YAML: nesting too deep") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{label}: (top level): must be a mapping of keys to values; "
                          f"got {type(doc).__name__}")
    try:
        sc = Scenario.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(_format_error(label, exc.errors()[0])) from None
    except RecursionError:
        raise ConfigError(f"{label}: nesting too deep") from None
    _check_names(label, sc)
    return sc


def load_scenario(source: str | Path) -> tuple[Scenario, str]:
    """Load a scenario from a file path or a built-in name; returns ``(scenario, label)``."""
    label, text = _read(source)
    return parse_scenario(text, label), label
