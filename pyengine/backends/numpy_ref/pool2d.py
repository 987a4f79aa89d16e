"""placeholder"""


def max_pool2d_forward(x, p):
    raise NotImplementedError  # placeholder, to be written


def max_pool2d_backward(dy, indices, x_shape, p):
    raise NotImplementedError  # placeholder, to be written


def avg_pool2d_forward(x, p):
    raise NotImplementedError  # placeholder, to be written


def avg_pool2d_backward(dy, x_shape, p):
    raise NotImplementedError  # placeholder, to be written


def max_unpool2d_forward(x, indices, out_hw):
    raise NotImplementedError  # placeholder, to be written


def max_unpool2d_backward(dy, indices):
    raise NotImplementedError  # placeholder, to be written


def adaptive_avg_pool2d_forward(x, out_hw):
    raise NotImplementedError  # placeholder, to be written


def adaptive_avg_pool2d_backward(dy, x_shape):
    raise NotImplementedError  # placeholder, to be written
