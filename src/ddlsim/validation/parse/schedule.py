"""Time-to-train cells: a batch schedule (:func:`parse_batch_schedule`: one batch, a JSON
list of ``{batch_size, epochs}`` phases, or ``phase1 65536 / phase2 32768``), the epoch a
row reached its target at (:func:`parse_target_epoch`), the data set a model trains on
(:func:`parse_dataset`) and whether the row trained on reduced-resolution images
(:func:`low_resolution`)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from ddlsim.validation.parse.text import cell_text

#: Training samples of the data sets time-to-train rows name.
DATASETS = {
    # ILSVRC 2012 (ImageNet-1k) training set: 1,281,167 images (Russakovsky et al. 2015)
    "imagenet": ("ImageNet-1k", 1_281_167, r"image\s*net|ilsvrc"),
    # Krizhevsky 2009, 'Learning Multiple Layers of Features from Tiny Images': 50,000
    # training images (10,000 test) in each of CIFAR-10 and CIFAR-100
    "cifar10": ("CIFAR-10", 50_000, r"cifar[\s_-]*10(?!\d)"),
    "cifar100": ("CIFAR-100", 50_000, r"cifar[\s_-]*100"),
}
#: Input resolution (pixels per side) of each data set's images as the zoo's networks read
#: them (ImageNet networks at 224x224, CIFAR at 32x32).
RESOLUTION = {"imagenet": 224, "cifar10": 32, "cifar100": 32}


@dataclass(frozen=True)
class Phase:
    """One phase of a batch schedule: ``batch`` (global samples per step), ``epochs``
    (None: not stated)."""

    batch: int
    epochs: float | None = None


_BATCH_KEYS = ("batch_size", "batch", "bs", "global_batch", "global_batch_size")
_EPOCH_KEYS = ("epochs", "epoch", "num_epochs", "n_epochs")


def _positive_int(value: object) -> int | None:
    try:
        f = float(str(value).strip().replace(",", ""))
    except ValueError:
        return None
    return int(f) if math.isfinite(f) and f == int(f) and f >= 1 else None


def parse_batch_schedule(text: object, micro_text: object = "") -> tuple[Phase, ...] | None:
    """A global-batch cell -> its phases, or None when it is not a schedule.

    ``"2048"`` -> one phase of unstated epochs; ``'[{"batch_size": 8192, "epochs": 6},
    ...]'`` -> one phase per entry; ``"phase1 65536 / phase2 32768"`` (or ``"65536 /
    32768"`` when ``micro_text`` also lists one value per phase) -> phases of unstated
    epochs.
    """
    raw = cell_text(text).strip()
    if not raw:
        return None
    single = _positive_int(raw)
    if single is not None:
        return (Phase(single),)
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except ValueError:
            return None
        phases = []
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict):
                return None
            batch = next((_positive_int(item[k]) for k in _BATCH_KEYS if k in item), None)
            epochs = next((item[k] for k in _EPOCH_KEYS if k in item), None)
            if batch is None or (epochs is not None and not (
                    isinstance(epochs, int | float) and epochs > 0)):
                return None
            phases.append(Phase(batch, None if epochs is None else float(epochs)))
        return tuple(phases) or None
    t = raw.lower()
    named = re.findall(r"phase\s*-?\s*\d+\s*[:=]?\s*(\d[\d,]*)", t)
    parts = [p for p in re.split(r"\s*/\s*", re.sub(r"\(.*?\)", "", t)) if p.strip()]
    micro_parts = [p for p in re.split(r"\s*/\s*", cell_text(micro_text)) if p.strip()]
    if not named and len(parts) > 1 and len(parts) == len(micro_parts):
        named = parts
    batches = [_positive_int(x) for x in named]
    if len(batches) > 1 and all(batches):
        return tuple(Phase(b) for b in batches)
    return None


def parse_target_epoch(*texts: object) -> float | None:
    """The epoch a row reached its target at: ``"reached 93.04 at epoch 27"``, ``"after 30
    epochs"``, ``"(ImageNet, 90 epochs)"``; None when no text says."""
    t = " ; ".join(cell_text(x) for x in texts).lower()
    m = (re.search(r"\bat\s+epoch\s+(\d+(?:\.\d+)?)\b", t)
         or re.search(r"\b(?:after|in|for)\s+(\d+(?:\.\d+)?)\s*epochs?\b", t)
         or re.search(r"(?<![\w.])(\d+(?:\.\d+)?)\s*epochs?\b", t))
    return float(m.group(1)) if m else None


def parse_dataset(*texts: object) -> str | None:
    """The data set (a :data:`DATASETS` key) the texts name first, or None."""
    t = " ; ".join(cell_text(x) for x in texts).lower()
    hits = [(m.start(), key) for key, (_, _, p) in DATASETS.items() if (m := re.search(p, t))]
    return min(hits)[1] if hits else None


def low_resolution(*texts: object) -> bool:
    """The texts say the run trained on reduced-resolution images (progressive resizing,
    low-res images)."""
    t = " ; ".join(cell_text(x) for x in texts).lower()
    return bool(re.search(r"progressive[\s_-]*resiz|low[\s_-]*res(?:olution)?\b|"
                          r"reduced[\s_-]*resolution|small(?:er)?[\s_-]*images", t))


def truncate(phases: tuple[Phase, ...], epochs: float) -> tuple[tuple[Phase, ...], str]:
    """The phases up to ``epochs`` epochs in all (the last one cut short; the last phase
    continued when the schedule is shorter) and what was done ("" when nothing)."""
    out, done = [], 0.0
    for p in phases:
        take = min(p.epochs, epochs - done)
        if take > 0:
            out.append(Phase(p.batch, take))
            done += take
    note = ""
    total = sum(p.epochs for p in phases)
    if done < epochs:
        out[-1] = Phase(out[-1].batch, out[-1].epochs + epochs - done)
        note = (f"the schedule lists {total:g} epochs, the target came at epoch {epochs:g}: "
                f"the last phase continued")
    elif total > epochs:
        note = f"the {total:g}-epoch schedule cut at epoch {epochs:g}, where the target came"
    return tuple(out), note
