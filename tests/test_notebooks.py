"""The three lab notebooks run top to bottom on tiny data, through the library's Python API."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import write_cifar_tree
from food_tree import make_food_tree
from notmnist_helpers import write_notmnist

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture
def tiny_data_root(tmp_path, monkeypatch):
    root = tmp_path / "data-root"
    write_cifar_tree(root / "cifar10")
    make_food_tree(root)
    write_notmnist(root / "notmnist", n_train=80, n_test=40)
    for key, value in {"CNNLAB_DATA": root, "CNNLAB_NB_EPOCHS": 2, "CNNLAB_NB_LIMIT": 40,
                       "CNNLAB_NB_CLASSES": 4, "CNNLAB_NB_INPUT": 64}.items():
        monkeypatch.setenv(key, str(value))
    return root


@pytest.mark.parametrize("name", ["ex1_non_sequential", "ex2_transfer_learning", "ex3_autoencoders"])
def test_notebook_runs_top_to_bottom(name, tiny_data_root, tmp_path):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figures were shown
    assert list((tmp_path / "runs").rglob("summary.json"))  # runs were recorded on the contract
