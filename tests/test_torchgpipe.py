"""torchgpipe benchmark rows: the benchmark's module balance mapped onto the zoo's layers."""

import pytest

from ddlsim.api.pipeline import (
    torchgpipe_layer_balance,
    torchgpipe_resnet_modules,
)
from ddlsim.errors import ConfigError
from ddlsim.sim.workloads import resnet50, resnet101

#: torchgpipe benchmarks/resnet101-speed/main.py, balance of pipeline-4 and pipeline-8
TORCHGPIPE_RESNET101_BALANCE = {4: (44, 92, 124, 110), 8: (26, 22, 33, 44, 44, 66, 66, 69)}


def _names(wl):
    return [lay.name for lay in wl.layers]


def test_resnet101_flattens_to_torchgpipe_370_modules():
    names = _names(resnet101(2))
    mods = torchgpipe_resnet_modules(names)
    # 4 stem modules + 33 bottlenecks x 11 + avgpool, flatten, fc (torchgpipe's count)
    assert len(mods) == 4 + 33 * 11 + 3 == 370
    assert sum(mods) == len(names)  # every layer lands in exactly one module
    # a block with a projection shortcut: identity(0), 8 single layers, residual(3), relu3
    assert mods[4:15] == [0, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1]
    assert mods[15:26] == [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]  # plain block: residual = add
    assert mods[-3:] == [1, 0, 2]  # avgpool, flatten, fc + loss
    assert len(torchgpipe_resnet_modules(_names(resnet50(2)))) == 4 + 16 * 11 + 3


def test_balance_maps_block_boundaries_onto_layer_boundaries():
    names = _names(resnet101(2))
    layers = torchgpipe_layer_balance(TORCHGPIPE_RESNET101_BALANCE[8], names)
    assert sum(layers) == len(names)
    # pipeline-8's first partition is the stem and two blocks of layer1 (26 modules)
    bounds = [sum(layers[:k]) for k in range(1, 8)]
    assert names[bounds[0] - 1] == "layer1.1.relu3" and names[bounds[0]] == "layer1.2.conv1"
    # every partition boundary of pipeline-8 falls between bottleneck blocks
    assert all(names[b].endswith(".conv1") for b in bounds)
    # pipeline-4 cuts inside a block: after module 44 = stem + 3 blocks + 7 modules
    four = torchgpipe_layer_balance(TORCHGPIPE_RESNET101_BALANCE[4], names)
    assert names[four[0] - 1] == "layer2.0.relu2"
    with pytest.raises(ConfigError, match="covers 369 modules"):
        torchgpipe_layer_balance((369,), names)

