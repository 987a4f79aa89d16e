"""pyengine.models: ready-made networks built from :mod:`pyengine.nn`, and a name registry
for the CLI (``pyengine train --model NAME``).

    model = pe.models.get_model("simple_cnn", num_classes=10)
"""
from __future__ import annotations

from .simple_cnn import SimpleCNN, simple_cnn

# name -> constructor; a new model adds one line here.
MODELS = {
    "simple_cnn": simple_cnn,
}


def get_model(name: str, **kwargs):
    """Build the model registered as ``name`` with keyword arguments ``kwargs``.

    >>> import pyengine as pe
    >>> type(pe.models.get_model("simple_cnn", num_classes=3)).__name__
    'SimpleCNN'
    """
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; available: {sorted(MODELS)}")
    return MODELS[name](**kwargs)


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(MODELS)


__all__ = ["MODELS", "get_model", "list_models", "SimpleCNN", "simple_cnn"]
