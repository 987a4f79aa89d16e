"""pyengine.functional: the public ops, with torch.nn.functional's names, arguments, defaults
and results. Each op validates its arguments, then runs the kernels of the backend that dispatch
picks, recording an autograd node when gradients are needed.
"""
from .activation import leaky_relu, relu, sigmoid, tanh
from .conv import conv2d, conv_transpose2d
from .dropout import dropout
from .linear import linear
from .loss import cross_entropy, mse_loss, nll_loss, smooth_l1_loss
from .normalization import batch_norm
from .padding import pad
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d, max_unpool2d
from .softmax import log_softmax, softmax

__all__ = [
    "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "max_unpool2d",
    "adaptive_avg_pool2d", "linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax",
    "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "smooth_l1_loss", "batch_norm",
    "dropout", "pad",
]
