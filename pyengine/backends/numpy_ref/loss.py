"""placeholder"""


def cross_entropy_forward(logits, target, weight, p):
    raise NotImplementedError  # placeholder, to be written


def cross_entropy_backward(dloss, logits, target, weight, lse, p):
    raise NotImplementedError  # placeholder, to be written


def nll_loss_forward(logp, target, weight, p):
    raise NotImplementedError  # placeholder, to be written


def nll_loss_backward(dloss, target, weight, input_shape, p):
    raise NotImplementedError  # placeholder, to be written


def mse_loss_forward(x, target, p):
    raise NotImplementedError  # placeholder, to be written


def mse_loss_backward(dloss, x, target, p):
    raise NotImplementedError  # placeholder, to be written


def smooth_l1_loss_forward(x, target, p):
    raise NotImplementedError  # placeholder, to be written


def smooth_l1_loss_backward(dloss, x, target, p):
    raise NotImplementedError  # placeholder, to be written
