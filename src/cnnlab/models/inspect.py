"""Looking at a model: a layer-by-layer summary (torchinfo) and an architecture graph (torchview +
graphviz), as Keras' ``model.summary()`` and ``plot_model`` would give."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from torch import nn

from cnnlab import files
from cnnlab.errors import CnnlabError


def summary_text(model: nn.Module, input_size: tuple[int, ...], depth: int = 4) -> str:
    """Layer, output shape and parameter count for one input of ``input_size`` (C, H, W)."""
    import torchinfo

    stats = torchinfo.summary(model, input_size=(1, *input_size), depth=depth, verbose=0,
                              col_names=("output_size", "num_params"), row_settings=("var_names",),
                              device="cpu", mode="eval")
    return str(stats)


def has_dot() -> bool:
    return shutil.which("dot") is not None


def draw_graph(model: nn.Module, input_size: tuple[int, ...], out: str | Path, depth: int = 3) -> Path:
    """Write the graph to ``out`` (.svg or .png) with shapes on every edge. Without graphviz's ``dot``
    the DOT source is written next to it (``.gv``) and one line says how to render it."""
    from torchview import draw_graph as torchview_graph

    out = Path(out)
    fmt = out.suffix.lstrip(".").lower() or "svg"
    if fmt not in ("svg", "png", "pdf", "gv", "dot"):
        raise CnnlabError(f"{out}: graph format must be .svg, .png, .pdf or .gv")
    files.make_dirs(out.parent)
    was_training = model.training
    graph = torchview_graph(model.eval(), input_size=(1, *input_size), depth=depth, expand_nested=True,
                            graph_name=type(model).__name__, device="cpu", save_graph=False,
                            hide_inner_tensors=True, roll=False)
    model.train(was_training)
    dot = graph.visual_graph
    if fmt in ("gv", "dot") or not has_dot():
        source = out.with_suffix(".gv")
        files.write_text(source, dot.source)
        if fmt not in ("gv", "dot"):
            print(f"cnnlab: graphviz 'dot' not found; wrote {source} (render it with: dot -T{fmt} {source} -o {out})",
                  file=sys.stderr)
        return source
    files.write_bytes(out, dot.pipe(format=fmt))
    return out


def graph_source(model: nn.Module, input_size: tuple[int, ...], depth: int = 3) -> str:
    from torchview import draw_graph as torchview_graph

    graph = torchview_graph(model.eval(), input_size=(1, *input_size), depth=depth, expand_nested=True,
                            device="cpu", save_graph=False, hide_inner_tensors=True)
    return graph.visual_graph.source


@torch.no_grad()
def output_shape(model: nn.Module, input_size: tuple[int, ...]) -> tuple[int, ...]:
    was_training = model.training
    shape = tuple(model.eval()(torch.zeros(2, *input_size)).shape[1:])
    model.train(was_training)
    return shape
