"""simple_cnn: the small MNIST-sized CNN of the CLI and examples.

    features:   0 Conv2d(in_channels, 32, 3, padding=1)  1 ReLU  2 MaxPool2d(2)
                3 Conv2d(32, 64, 3, padding=1)           4 ReLU  5 MaxPool2d(2)
    classifier: 0 Flatten  1 Linear(64*7*7=3136, 128)  2 ReLU  3 Linear(128, num_classes)

state_dict keys (the same as torch's for the equivalent
``nn.Sequential(OrderedDict(features=nn.Sequential(...), classifier=nn.Sequential(...)))``):
features.0.weight (32, C, 3, 3), features.0.bias, features.3.weight (64, 32, 3, 3),
features.3.bias, classifier.1.weight (128, 3136), classifier.1.bias,
classifier.3.weight (num_classes, 128), classifier.3.bias.
"""
from __future__ import annotations

import numbers

from .. import nn


class SimpleCNN(nn.Module):
    """Two conv-relu-pool stages and a two-layer classifier, for (N, C, 28, 28) images (or
    ``input_size`` x ``input_size``; the flattened size is 64 * (input_size // 4)^2)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28):
        super().__init__()
        for name, v in (("num_classes", num_classes), ("in_channels", in_channels),
                        ("input_size", input_size)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                raise ValueError(f"simple_cnn: {name} must be a positive int, got {v!r}")
        if input_size < 4:
            raise ValueError(f"simple_cnn: input_size must be at least 4 (two 2x2 poolings), "
                             f"got {input_size}")
        side = input_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * side * side, 128), nn.ReLU(),
            nn.Linear(128, num_classes))

    def forward(self, x):
        """Logits (N, num_classes) for images ``x`` (N, C, H, W)."""
        return self.classifier(self.features(x))


def simple_cnn(num_classes: int = 10, in_channels: int = 1, **kwargs) -> SimpleCNN:
    """The simple CNN (see the module docstring for its layers and state_dict names).

    >>> import numpy as np, pyengine as pe
    >>> model = pe.models.simple_cnn()
    >>> model(pe.tensor(np.zeros((2, 1, 28, 28), np.float32))).shape
    (2, 10)
    """
    return SimpleCNN(num_classes=num_classes, in_channels=in_channels, **kwargs)


__all__ = ["SimpleCNN", "simple_cnn"]
