import re

import pytest
import torch

from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.models import MODELS, count_params, create_model, describe, list_models
from cnnlab.models.inspect import graph_source, summary_text
from cnnlab.registry import Registry

CONV = re.compile(r"Conv \d+@\d+x\d+/s\d+/p\d+")
NON_SEQUENTIAL = {"multipath": "cat", "multifeature": "cat", "residual": "add", "residual_fast": "add"}


def test_the_lab_architectures_are_registered():
    assert {"sequential", "multipath", "multifeature", "residual", "residual_fast"} <= set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_and_description(name):
    model = create_model(name, num_classes=10)
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    text = describe(model)
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert len(CONV.findall(text)) == n_convs  # every conv named with filters, size, stride, padding
    assert "Dense 10" in text
    assert model.forward_head(model.forward_features(x)).shape == (4, 10)


@pytest.mark.parametrize("name,merge", sorted(NON_SEQUENTIAL.items()))
def test_non_sequential_graphs_have_merge_nodes(name, merge):
    source = graph_source(create_model(name), (3, 32, 32))
    assert re.search(rf">{merge}<BR/>", source), f"no {merge} node in {name}'s graph"


def test_sequential_graph_has_no_merges():
    source = graph_source(create_model("sequential"), (3, 32, 32))
    assert not re.search(r">(cat|add)<BR/>", source)


def test_descriptions_name_the_structure():
    assert "Inception[" in describe(create_model("multipath")) and "concat" in describe(create_model("multipath"))
    assert "taps after each stage" in describe(create_model("multifeature"))
    text = describe(create_model("residual"))
    assert "+ identity" in text and "+ projection Conv 64@1x1/s2/p0" in text


def test_overrides_change_the_model_and_typos_are_errors():
    small = create_model("sequential", widths=[8, 16, 32], dense=[32])
    assert count_params(small) < count_params(create_model("sequential"))
    assert "Conv 8@3x3/s1/p1" in describe(small)
    with pytest.raises(ConfigError, match="model 'sequential'.*did you mean 'widths'"):
        create_model("sequential", widht=[8])
    with pytest.raises(CnnlabError, match="unknown architecture 'multpath'.*did you mean 'multipath'"):
        create_model("multpath")


def test_registry_refuses_duplicates():
    reg = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda: 2)
    assert MODELS.names() == sorted(MODELS.names())


def test_summary_lists_output_shapes():
    text = summary_text(create_model("multipath"), (3, 32, 32))
    assert "[1, 128, 32, 32]" in text  # first inception block's concatenated output
    assert "Total params" in text
