"""Models: the architecture registry and what is registered in it.

    from cnnlab.models import create_model, list_models
    model = create_model("multipath", num_classes=10)
"""

from cnnlab.models import cifar as _cifar  # noqa: F401  (registers the CIFAR-10 architectures)
from cnnlab.models.describe import describe
from cnnlab.models.registry import MODELS, count_params, create_model, list_models, model_config

__all__ = ["MODELS", "count_params", "create_model", "describe", "list_models", "model_config"]
