"""placeholder"""


def dropout(*args, **kwargs):
    raise NotImplementedError  # placeholder


__all__ = ['dropout']
