"""The layer factory the workload builders share: :class:`Net` appends layers while tracking
the activation shape and whether the activation needs a gradient."""

from __future__ import annotations

from ddlsim.errors import ConfigError
from ddlsim.opspec import call, conv_out
from ddlsim.sim.workloads.graph import Layer, Workload, check_batch, check_dtype


class Net:
    """Builds a layer list while tracking the per-sample activation shape and whether the
    current activation needs a gradient (it does once any layer with parameters ran).

    Shapes are per sample, ``(c, h, w)`` for images or ``(f,)`` for features.
    """

    def __init__(self, batch: int, input_shape: tuple[int, ...]) -> None:
        self.n = batch
        self.shape = input_shape
        self.grad = False  # does the current activation need a gradient?
        self.layers: list[Layer] = []

    def _push(self, layer: Layer, out_shape: tuple[int, ...]) -> tuple[int, ...]:
        self.layers.append(layer)
        self.shape = out_shape
        return out_shape

    def _image(self, what: str) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise ConfigError(f"{what}: needs an image input (c, h, w), got shape {self.shape}")
        return self.shape  # type: ignore[return-value]

    def conv(self, name: str, out_ch: int, kernel: int, stride: int = 1, pad: int = 0,
             bias: bool = True, src: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """Square ``kernel`` x ``kernel`` convolution to ``out_ch`` channels (``src``: input
        shape when it is not the current one, e.g. a residual shortcut)."""
        if src is not None:
            self.shape = src
        c, h, w = self._image(name)
        p, q = conv_out(h, kernel, stride, pad), conv_out(w, kernel, stride, pad)
        if p < 1 or q < 1:
            raise ConfigError(f"{name}: kernel {kernel} with pad {pad} does not fit the "
                              f"{h}x{w} input")
        shape = dict(n=self.n, c=c, h=h, w=w, k=out_ch, r=kernel, s=kernel, stride=stride,
                     pad=pad)
        out = self.n * out_ch * p * q
        fwd = [call("conv2d_fwd", **shape)]
        bwd = [call("conv2d_bwd_data", **shape)] if self.grad else []
        bwd.append(call("conv2d_bwd_filter", **shape))
        if bias:
            fwd.append(call("add", numel=out))
            bwd.append(call("add", numel=out))
        params = out_ch * c * kernel * kernel + (out_ch if bias else 0)
        self.grad = True
        layer = Layer(name, "conv", tuple(fwd), tuple(bwd), params, self.n * c * h * w, out)
        return self._push(layer, (out_ch, p, q))

    def linear(self, name: str, out: int, bias: bool = True, rows: int | None = None,
               owns_weight: bool = True) -> tuple[int, ...]:
        """Fully connected layer to ``out`` features over ``rows`` rows (default: batch).
        The input is flattened. ``owns_weight=False``: the weight is tied to another layer,
        which counts the parameters; the weight gradient is still computed here."""
        rows = self.n if rows is None else rows
        k = 1
        for d in self.shape:
            k *= d
        n_out = rows * out
        fwd = [call("gemm", m=rows, n=out, k=k)]
        bwd = [call("gemm", m=rows, n=k, k=out)] if self.grad else []
        bwd.append(call("gemm", m=out, n=k, k=rows))
        if bias:
            fwd.append(call("add", numel=n_out))
            bwd.append(call("add", numel=n_out))
        params = (out * k if owns_weight else 0) + (out if bias else 0)
        self.grad = True
        layer = Layer(name, "linear", tuple(fwd), tuple(bwd), params, rows * k, n_out)
        return self._push(layer, (out,))

    def numel(self, rows: int | None = None) -> int:
        """Elements of the current activation over ``rows`` rows (default: the batch)."""
        size = self.n if rows is None else rows
        for d in self.shape:
            size *= d
        return size

    def elementwise(self, name: str, kind: str, rows: int | None = None) -> tuple[int, ...]:
        """``relu`` or ``gelu`` over the current activation."""
        numel = self.numel(rows)
        fwd = (call(f"{kind}_fwd", numel=numel),)
        bwd = (call(f"{kind}_bwd", numel=numel),) if self.grad else ()
        return self._push(Layer(name, kind, fwd, bwd, 0, numel if bwd else 0, numel),
                          self.shape)

    def pool(self, name: str, mode: str, kernel: int, stride: int | None = None,
             pad: int = 0) -> tuple[int, ...]:
        """``mode`` = ``'max'`` or ``'avg'`` pooling, ``stride`` defaulting to ``kernel``."""
        stride = kernel if stride is None else stride
        c, h, w = self._image(name)
        p, q = conv_out(h, kernel, stride, pad), conv_out(w, kernel, stride, pad)
        if p < 1 or q < 1:
            raise ConfigError(f"{name}: pool kernel {kernel} with pad {pad} does not fit the "
                              f"{h}x{w} input")
        shape = dict(n=self.n, c=c, h=h, w=w, kernel=kernel, stride=stride, pad=pad)
        fwd = (call(f"{mode}pool_fwd", **shape),)
        bwd = (call(f"{mode}pool_bwd", **shape),) if self.grad else ()
        out = self.n * c * p * q
        saved = self.n * c * h * w + out if (bwd and mode == "max") else 0
        return self._push(Layer(name, "pool", fwd, bwd, 0, saved, out), (c, p, q))

    def bn(self, name: str) -> tuple[int, ...]:
        """Training-mode batch normalisation (2 parameters per channel)."""
        c, h, w = self._image(name)
        shape = dict(n=self.n, c=c, h=h, w=w)
        numel = self.n * c * h * w
        fwd = (call("batchnorm_fwd", **shape),)
        bwd = (call("batchnorm_bwd", **shape),)
        self.grad = True
        return self._push(Layer(name, "bn", fwd, bwd, 2 * c, numel, numel), self.shape)

    def add(self, name: str, rows: int | None = None) -> tuple[int, ...]:
        """Residual add of two activations of the current shape."""
        numel = self.numel(rows)
        fwd = (call("add", numel=numel),)
        bwd = (call("add", numel=numel),) if self.grad else ()
        return self._push(Layer(name, "add", fwd, bwd, 0, 0, numel), self.shape)

    def softmax_xent(self, name: str = "loss", rows: int | None = None) -> tuple[int, ...]:
        """Softmax + cross-entropy over the current features as classes."""
        rows = self.n if rows is None else rows
        classes = self.numel(1)
        fwd = (call("softmax_xent_fwd", n=rows, classes=classes),)
        bwd = (call("softmax_xent_bwd", n=rows, classes=classes),) if self.grad else ()
        saved = rows * classes if bwd else 0
        return self._push(Layer(name, "softmax_xent", fwd, bwd, 0, saved, rows), (1,))

    def workload(self, name: str, input_shape: tuple[int, ...], dtype: str,
                 **kwargs: object) -> Workload:
        return Workload(name, self.n, tuple(input_shape), tuple(self.layers), dtype,
                        **kwargs)  # type: ignore[arg-type]


def start(batch: object, input_shape: tuple[int, ...], dtype: object) -> Net:
    """A :class:`Net` for ``batch`` samples of ``input_shape``, after checking batch and dtype."""
    check_batch(batch)
    check_dtype(dtype)
    return Net(batch, input_shape)  # type: ignore[arg-type]
