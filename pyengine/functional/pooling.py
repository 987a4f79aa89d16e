"""placeholder"""


def max_pool2d(*args, **kwargs):
    raise NotImplementedError  # placeholder


def avg_pool2d(*args, **kwargs):
    raise NotImplementedError  # placeholder


def max_unpool2d(*args, **kwargs):
    raise NotImplementedError  # placeholder


def adaptive_avg_pool2d(*args, **kwargs):
    raise NotImplementedError  # placeholder


__all__ = ['max_pool2d', 'avg_pool2d', 'max_unpool2d', 'adaptive_avg_pool2d']
