"""torchgpipe (kakaobrain) conventions for :mod:`ddlsim.api.pipeline`: a partition
``balance`` counts modules of the flattened ``nn.Sequential`` (mapped onto the zoo's layers
here), and ``checkpoint='except_last'`` is its default (:func:`except_last_prediction`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ddlsim.api.pipeline_types import PipelineOptions
from ddlsim.errors import ConfigError


def torchgpipe_resnet_modules(names) -> list[int]:
    """How many of the zoo's ResNet layers (``names``, in order) each module of torchgpipe's
    flattened ResNet holds (kakaobrain/torchgpipe benchmarks/models/resnet: stem conv1, bn1,
    relu, maxpool; per bottleneck ``identity`` (stash, no layer), conv1, bn1, relu1, conv2,
    bn2, relu2, conv3, bn3, ``residual`` (downsample conv + bn when present, and the add),
    relu3; then avgpool, flatten (no layer), fc). The loss runs after the last module on
    the last device, so it joins fc. ResNet-101 gives 370 modules."""
    out, i, n = [], 0, len(names)
    while i < n:
        name = names[i]
        if name.startswith("layer") and name.endswith(".conv1"):
            out.append(0)  # identity: stashes the block input for the residual
        if ".downsample.0" in name:
            out.append(3)  # residual: downsample conv, its bn, the add
            i += 3
        elif name == "avgpool":
            out += [1, 0]  # avgpool, flatten
            i += 1
        elif name == "fc":
            out.append(n - i)  # fc, then the loss
            i = n
        else:
            out.append(1)
            i += 1
    return out


def torchgpipe_layer_balance(balance, names) -> tuple[int, ...]:
    """torchgpipe's ``balance`` (modules per partition) as layer counts of the zoo's
    workload ``names`` (see :func:`torchgpipe_resnet_modules`)."""
    mods = torchgpipe_resnet_modules(names)
    if sum(balance) != len(mods):
        raise ConfigError(f"balance: torchgpipe balance {list(balance)} covers {sum(balance)} "
                          f"modules, the model has {len(mods)}")
    out, start = [], 0
    for count in balance:
        out.append(sum(mods[start:start + count]))
        start += count
    return tuple(out)


def except_last_prediction(opts: PipelineOptions, cost_model_factory=None):
    """Prediction of a torchgpipe pipeline with ``checkpoint='except_last'``: the
    recompute-everything (``opts``) and recompute-nothing runs on the same placement,
    iteration time blended as ``T_none + (m-1)/m (T_full - T_none)``; memory from the
    checkpointed run. Returns the checkpointed prediction with the blended result."""
    from ddlsim.api.pipeline import predict_model_parallel  # the engine imports this module

    full = predict_model_parallel(opts, cost_model_factory)
    if opts.recompute != "full" or opts.micro_batches == 1:
        return full
    balance = tuple(b - a for a, b in zip(full.bounds[:-1], full.bounds[1:], strict=True))
    none = predict_model_parallel(replace(opts, recompute="none", placement="manual",
                                          balance=balance, balance_unit="layers"),
                                  cost_model_factory=cost_model_factory)
    m = opts.micro_batches
    t_none, t_full = none.iteration_s, full.iteration_s
    t = t_none + (m - 1) / m * (t_full - t_none)
    times = list(full.result.iteration_times_s)
    times[-1] = t
    return replace(full, result=_Rescaled(full.result, times))


@dataclass
class _Rescaled:
    """A pipeline result whose iteration times were replaced (other fields delegate)."""

    base: object
    iteration_times_s: list

    def __getattr__(self, name):
        return getattr(self.base, name)
