"""Options and parsers shared by several commands."""

from __future__ import annotations

import json
import math

import click

from ddlsim.errors import DdlsimError

DEVICE_CHOICE = click.Choice(["auto", "cpu", "gpu"])
SEED = click.IntRange(0, 2**32 - 1)  # numpy's seed range
GPU_COUNT = click.IntRange(1, 1_000_000)
KERNEL_DTYPE = click.Choice(["float32", "float16", "bfloat16"])
#: Compute precision of a predicted run; ``auto``: the GPU's usual mixed precision (bf16
#: where it has it, else fp16 with tensor cores, else fp32) with fp32 gradient reduction.
DTYPE = click.Choice(["auto", "float32", "tf32", "float16", "bfloat16"])
NOISE = click.Choice(["none", "normal", "lognormal", "gamma"])


def check_out(ctx, param, value):
    """Refuse a report folder that would overwrite the user's files before any work."""
    if value is not None:
        from ddlsim.reports.files import check_out_dir

        try:
            check_out_dir(value)
        except DdlsimError as exc:
            raise click.BadParameter(str(exc).removeprefix("out: ")) from None
    return value


def out_option(help_text: str = "Write the report here.", default=None):
    return click.option("--out", "out_dir", callback=check_out, default=default,
                        show_default=default is not None, type=click.Path(file_okay=False),
                        help=help_text)


CALIBRATION = click.option(
    "--calibration", default="stored", show_default=True,
    help="stored: the constants fitted by 'ddlsim calibrate' (data/calibration.json); "
         "default: first principles; or a calibration .json (added to the stored ones).")
SCENARIO_CALIBRATION = click.option(
    "--calibration", default=None,
    help="stored | default | a calibration .json (default: the scenario's 'calibration', "
         "else stored).")
JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
MAX_EVENTS = click.option(
    "--max-events", type=click.IntRange(min=1),
    help="Stop a simulation that would exceed this many events (default 50 million).")


def precision(dtype: str, fp8: bool = False):
    """``--dtype`` (and ``--fp8``) as a job Precision (``auto``: the device's mixed
    precision)."""
    from ddlsim import api

    return api.Precision(None if dtype == "auto" else dtype, fp8=fp8)


FP8 = click.option("--fp8", is_flag=True,
                   help="GEMMs in fp8 (Transformer Engine) where the GPU has fp8 tensor cores; "
                        "the rest in --dtype.")


LORA_RANK = click.option(
    "--lora-rank", type=click.IntRange(min=1),
    help="LoRA fine-tuning: train rank-N adapters, the base frozen in the compute "
         "precision (the MLPerf Llama-2 70B recipe: 16); default: full training.")
LORA_TARGETS = click.option(
    "--lora-targets", help="Matrices the LoRA adapters attach to, comma-separated among "
                           "qkv, q, k, v, o, gate, up, down (default: qkv,o, the MLPerf "
                           "recipe); needs --lora-rank.")


def workload(model: str, lora_rank: int | None = None, lora_targets: str | None = None,
             **kw):
    """The job's :class:`~ddlsim.job.Workload` from ``--model`` and the LoRA options."""
    from ddlsim import api

    targets = (tuple(t.strip() for t in lora_targets.split(",") if t.strip())
               if lora_targets is not None else None)
    return api.Workload(model, lora_rank=lora_rank, lora_targets=targets, **kw)


def number_list(name: str, text: str, kind: type = int) -> list:
    """Parse ``--name 8,64,512`` into numbers of ``kind`` (int or float)."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise click.BadParameter(f"expected {what} separated by commas, got {text!r}",
                                 param_hint=f"--{name}") from None
    if not values:
        raise click.BadParameter("needs at least one value", param_hint=f"--{name}")
    return values


def seed_list(text: str) -> list[int]:
    seeds = number_list("seeds", text)
    bad = [v for v in seeds if not 0 <= v < 2**32]
    if bad:
        raise click.BadParameter(f"seeds must be in [0, 2**32), got {bad[0]}",
                                 param_hint="--seeds")
    return seeds


def pairs(option: str, items: tuple[str, ...], key_type, example: str) -> tuple:
    """Parse repeated ``KEY=FACTOR`` options."""
    out = []
    for item in items:
        key, _, factor = item.partition("=")
        try:
            out.append((key_type(key), float(factor)))
        except ValueError:
            raise click.BadParameter(f"expected {example}, got {item!r}",
                                     param_hint=option) from None
    return tuple(out)


def parse_size(name: str, text: str) -> float:
    """``8M`` -> 8 MiB in bytes; a finite size of at least one byte."""
    mult = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    t = text.strip().upper().removesuffix("B")
    try:
        value = float(t[:-1]) * mult[t[-1]] if t and t[-1] in mult else float(t)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        raise click.BadParameter(f"expected a size of at least 1 byte like 8M or 1G, got "
                                 f"{text!r}", param_hint=f"--{name}")
    return value


def unit_formats(columns) -> dict[str, str]:
    """Human formats for SI columns by the unit their name ends in (``_bytes``, ``_s``,
    ``_Bps``, fractions and utilisations as percentages)."""
    out = {}
    for c in columns:
        if c.endswith("_bytes"):
            out[c] = "bytes"
        elif c.endswith("_s") and not c.endswith("_per_s"):
            out[c] = "seconds"
        elif c.endswith("_Bps"):
            out[c] = "rate"
        elif c.endswith(("_frac", "_fraction", "efficiency", "_util_mean", "_util_min",
                         "_util_max", "goodput_fraction")):
            out[c] = "pct"
    return out


def summary_table(records: list[dict]) -> str:
    """Records as an aligned table in human units (see :func:`unit_formats`); other floats
    to 4 significant digits."""
    import pandas as pd

    from ddlsim.reports import tables

    df = pd.DataFrame(records)
    fmt = unit_formats(df.columns)
    for col in df.columns:
        if col not in fmt and df[col].dtype.kind == "f":
            df[col] = ["-" if v != v else f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"
                       for v in df[col]]
    return tables.render(df, fmt)


def echo_json(doc) -> None:
    """Print ``doc`` as JSON (NaN as null, numpy numbers as numbers)."""
    def clean(v):
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    click.echo(json.dumps(clean(doc), indent=2, default=str))


def echo_notes(pred) -> None:
    """Warnings (on stderr: e.g. a profile that is not used) and, when the fullest GPU is
    over its memory, by how much and what would fit."""
    for w in pred.warnings:
        click.echo(f"warning: {w}", err=True)
    if pred.fits is not False:
        return
    from ddlsim import api

    over = (pred.memory_bytes - pred.memory_capacity_bytes) / 2**30
    click.echo(f"does not fit: {pred.memory_bytes / 2**30:.1f} GiB needed on the fullest "
               f"{pred.device} ({over:.1f} GiB over its "
               f"{pred.memory_capacity_bytes / 2**30:.0f} GiB)")
    for line in api.memory_advice(pred.job):
        click.echo(f"  would fit: {line}")


def headline(pred) -> str:
    """The one-line answer of a prediction (see :func:`ddlsim.reports.headline.sentence`)."""
    from ddlsim.reports.headline import sentence

    return sentence(pred)
