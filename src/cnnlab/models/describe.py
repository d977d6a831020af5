"""Architecture text generated from a built model: every conv's filters, size, stride and padding,
pooling, branches and merges, dense layers. This is Table 1's Architecture column."""

from __future__ import annotations

from torch import nn

SILENT = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.GELU, nn.SiLU, nn.Identity, nn.Flatten, nn.Sigmoid)


def _pair(v) -> str:
    a, b = (v, v) if isinstance(v, int) else v
    return f"{a}x{b}" if a != b else f"{a}x{a}"


def describe_leaf(m: nn.Module) -> str | None:
    if isinstance(m, nn.Conv2d):
        pad = m.padding if isinstance(m.padding, str) else (m.padding[0] if m.padding[0] == m.padding[1] else m.padding)
        return f"Conv {m.out_channels}@{_pair(m.kernel_size)}/s{m.stride[0]}/p{pad}"
    if isinstance(m, nn.MaxPool2d):
        return f"MaxPool {_pair(m.kernel_size)}/s{m.stride if isinstance(m.stride, int) else m.stride[0]}"
    if isinstance(m, nn.AvgPool2d):
        return f"AvgPool {_pair(m.kernel_size)}"
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return "GlobalAvgPool"
    if isinstance(m, nn.AdaptiveMaxPool2d):
        return "GlobalMaxPool"
    if isinstance(m, nn.Linear):
        return f"Dense {m.out_features}"
    if isinstance(m, nn.Dropout):
        return f"Dropout {m.p:g}"
    if isinstance(m, nn.Upsample):
        return f"UpSample x{m.scale_factor:g}"
    if isinstance(m, SILENT):
        return ""
    return None


def describe(m: nn.Module) -> str:
    """One line for ``m``: blocks that know how to describe themselves do; containers join children."""
    if hasattr(m, "describe"):
        return m.describe(describe)
    leaf = describe_leaf(m)
    if leaf is not None:
        return leaf
    parts = [describe(child) for child in m.children()]
    return " -> ".join(p for p in parts if p)
