"""pyengine.optim: optimizers and learning-rate schedulers with torch.optim's names, arguments,
update rules and state_dict layout.

    opt = pe.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = pe.optim.lr_scheduler.StepLR(opt, step_size=10)
    loss.backward(); opt.step(); opt.zero_grad(); sched.step()
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
