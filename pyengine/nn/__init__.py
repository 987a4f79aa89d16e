"""pyengine.nn: layers and models as Modules, with torch.nn's names, arguments, parameter
layouts and state_dict keys. Layers are thin: they hold parameters and call
:mod:`pyengine.functional`.

    import pyengine as pe
    net = pe.nn.Sequential(pe.nn.Conv2d(1, 8, 3, padding=1), pe.nn.ReLU(), pe.nn.MaxPool2d(2),
                           pe.nn.Flatten(), pe.nn.Linear(8 * 14 * 14, 10))
    loss = pe.nn.CrossEntropyLoss()(net(x), y)
"""
from .. import functional
from . import init, utils
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .linear import Flatten, Identity, Linear
from .loss import CrossEntropyLoss, MSELoss, NLLLoss, SmoothL1Loss
from .module import IncompatibleKeys, Module, ModuleList, Sequential
from .normalization import BatchNorm2d
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, MaxUnpool2d
from .utils import clip_grad_norm_, clip_grad_value_

__all__ = [
    "Parameter", "Module", "Sequential", "ModuleList", "IncompatibleKeys",
    "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "MaxUnpool2d", "AdaptiveAvgPool2d",
    "Flatten", "Linear", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Dropout", "BatchNorm2d", "CrossEntropyLoss", "NLLLoss", "MSELoss",
    "SmoothL1Loss", "init", "utils", "functional", "clip_grad_norm_", "clip_grad_value_",
]
