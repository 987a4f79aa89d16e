"""``pyengine train`` and ``pyengine evaluate``: the training recipe, its loop and checkpoints.

A checkpoint holds the model, optimizer and scheduler states, the number of finished epochs,
pyengine's RNG state, the recipe and the per-epoch history; it is written atomically after every
epoch (``pe.save``), so ``--resume`` continues exactly where the last finished epoch left off:
the data order of epoch e depends only on (seed, e), and the RNG state is restored.
"""
from __future__ import annotations

import math
import os
import sys
import time

# Fashion-MNIST / MNIST pixel statistics (of the training images scaled to [0, 1]).
NORMALISATION = {"fashion-mnist": (0.2860, 0.3530), "mnist": (0.1307, 0.3081)}

RECIPE_KEYS = ("model", "dataset", "epochs", "batch_size", "optimizer", "lr", "momentum",
               "weight_decay", "scheduler", "seed")


def add_parsers(sub) -> None:
    """Register ``pyengine train`` and ``pyengine evaluate``."""
    p = sub.add_parser("train", help="train a model (default: simple_cnn on Fashion-MNIST)")
    p.add_argument("--model", default="simple_cnn", help="model name (default simple_cnn)")
    p.add_argument("--dataset", default="fashion-mnist", choices=sorted(NORMALISATION))
    p.add_argument("--data-root", default=None, help="folder holding the IDX files")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--scheduler", default="none", choices=("none", "cosine", "step"))
    p.add_argument("--backend", default="auto", help="kernel backend (see `pyengine info`)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda_emu")
    p.add_argument("--threads", type=int, default=None, help="kernel threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint path (default checkpoints/<model>-<dataset>.pe)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--limit-batches", type=int, default=None,
                   help="train on at most this many batches per epoch (quick runs)")
    p.add_argument("--limit-test-batches", type=int, default=None,
                   help="evaluate on at most this many test batches")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)

    e = sub.add_parser("evaluate", help="evaluate a training checkpoint on the test set")
    e.add_argument("checkpoint")
    e.add_argument("--data-root", default=None)
    e.add_argument("--batch-size", type=int, default=512)
    e.add_argument("--backend", default="auto")
    e.add_argument("--device", default="cpu")
    e.add_argument("--threads", type=int, default=None)
    e.add_argument("--limit-test-batches", type=int, default=None)
    e.set_defaults(func=run_evaluate)


# -- building blocks ----------------------------------------------------------------------------
def load_dataset(name: str, root, train: bool):
    """The Fashion-MNIST or MNIST split (pyengine.data)."""
    from pyengine import data
    cls = data.FashionMNIST if name == "fashion-mnist" else data.MNIST
    return cls(root=root, train=train)


def make_optimizer(name, params, lr, momentum, weight_decay):
    """SGD (with momentum), Adam or AdamW over ``params``."""
    from pyengine import optim
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(name, optimizer, epochs):
    """None, cosine annealing over the epochs, or a step decay at 2/3 of them."""
    from pyengine.optim import lr_scheduler
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(2 * epochs // 3, 1), gamma=0.1)
    return None


def normalise(images, dataset: str):
    """Standardise a batch of [0, 1] images with the dataset's statistics."""
    mean, std = NORMALISATION[dataset]
    return (images - mean) / std


def evaluate(model, loader, dataset, device, limit=None):
    """(mean loss, accuracy in %) of ``model`` over ``loader``, without gradients."""
    import pyengine as pe
    import pyengine.functional as F
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with pe.no_grad():
        for i, (x, y) in enumerate(loader):
            if limit is not None and i >= limit:
                break
            x, y = normalise(x, dataset).to(device), y.to(device)
            logits = model(x)
            total_loss += float(F.cross_entropy(logits, y, reduction="sum").item())
            correct += int((logits.argmax(dim=1) == y).numpy().sum())
            seen += y.shape[0]
    model.train()
    return total_loss / max(seen, 1), 100.0 * correct / max(seen, 1)


def train_one_epoch(model, loader, optimizer, dataset, device, limit=None, progress=True,
                    desc="train"):
    """One pass over ``loader``; returns (mean loss, images per second)."""
    import pyengine.functional as F
    model.train()
    n_batches = len(loader) if limit is None else min(limit, len(loader))
    bar = _progress(n_batches, desc, progress)
    total, seen, t0 = 0.0, 0, time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if i >= n_batches:
            break
        x, y = normalise(x, dataset).to(device), y.to(device)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.item())
        if not math.isfinite(value):
            raise RuntimeError(f"loss became {value} at batch {i}; lower --lr")
        total += value * y.shape[0]
        seen += y.shape[0]
        rate = seen / max(time.perf_counter() - t0, 1e-9)
        bar.update(1)
        bar.set_postfix_str(f"loss={value:.4f} img/s={rate:,.0f}")
    bar.close()
    return total / max(seen, 1), seen / max(time.perf_counter() - t0, 1e-9)


class _NoBar:
    def update(self, n):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


def _progress(total, desc, enabled):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True, file=sys.stderr)


def _setup(backend, threads):
    import pyengine as pe
    from pyengine.threads import set_num_threads
    pe.set_backend(backend)
    if threads is not None:
        set_num_threads(threads)


# -- the commands -------------------------------------------------------------------------------
def run_train(args) -> int:
    """``pyengine train``: train, evaluate after each epoch, checkpoint after each epoch."""
    import pyengine as pe
    from pyengine import data, models
    from pyengine.random import get_rng_state, set_rng_state

    if args.epochs < 1 or args.batch_size < 1:
        raise ValueError(f"--epochs and --batch-size must be >= 1, got {args.epochs}, "
                         f"{args.batch_size}")
    _setup(args.backend, args.threads)
    ckpt_path = args.checkpoint or os.path.join("checkpoints", f"{args.model}-{args.dataset}.pe")
    recipe = {k: getattr(args, k) for k in RECIPE_KEYS}

    pe.manual_seed(args.seed)
    model = models.get_model(args.model).to(args.device)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.momentum,
                               args.weight_decay)
    scheduler = make_scheduler(args.scheduler, optimizer, args.epochs)
    start_epoch, history = 0, []
    if args.resume:
        ckpt = pe.load(ckpt_path)
        if ckpt.get("recipe", {}).get("model") != args.model:
            raise ValueError(f"checkpoint {ckpt_path} holds model "
                             f"{ckpt.get('recipe', {}).get('model')!r}, not {args.model!r}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        start_epoch, history = int(ckpt["epoch"]), list(ckpt.get("history", []))
        print(f"resumed from {ckpt_path} after epoch {start_epoch}")

    train_set = load_dataset(args.dataset, args.data_root, train=True)
    test_set = load_dataset(args.dataset, args.data_root, train=False)
    train_loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                   seed=args.seed)
    test_loader = data.DataLoader(test_set, batch_size=512, shuffle=False)
    print(f"training {args.model} on {args.dataset} ({len(train_set)} images) for "
          f"{args.epochs} epochs: {args.optimizer} lr={args.lr} batch={args.batch_size}, "
          f"backend={pe.get_backend()}, device={args.device}")

    for epoch in range(start_epoch, args.epochs):
        train_loader.set_epoch(epoch)
        loss, rate = train_one_epoch(model, train_loader, optimizer, args.dataset, args.device,
                                     args.limit_batches, not args.no_progress,
                                     desc=f"epoch {epoch + 1}/{args.epochs}")
        if scheduler is not None:
            scheduler.step()
        test_loss, acc = evaluate(model, test_loader, args.dataset, args.device,
                                  args.limit_test_batches)
        history.append({"epoch": epoch + 1, "train_loss": loss, "test_loss": test_loss,
                        "test_accuracy": acc, "images_per_s": rate})
        print(f"epoch {epoch + 1}: train loss {loss:.4f}, test loss {test_loss:.4f}, "
              f"test accuracy {acc:.2f}%, {rate:,.0f} images/s", flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(ckpt_path)), exist_ok=True)
        pe.save({"format": "pyengine-train-checkpoint", "recipe": recipe,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict() if scheduler is not None else None,
                 "epoch": epoch + 1, "rng": get_rng_state(), "history": history}, ckpt_path)
    print(f"checkpoint: {ckpt_path}")
    return 0


def run_evaluate(args) -> int:
    """``pyengine evaluate CHECKPOINT``: test loss and accuracy of a saved model."""
    import pyengine as pe
    from pyengine import data, models
    _setup(args.backend, args.threads)
    ckpt = pe.load(args.checkpoint)
    if not isinstance(ckpt, dict) or ckpt.get("format") != "pyengine-train-checkpoint":
        raise ValueError(f"{args.checkpoint} is not a pyengine training checkpoint")
    recipe = ckpt["recipe"]
    model = models.get_model(recipe["model"])
    model.load_state_dict(ckpt["model"])
    model.to(args.device)
    test_set = load_dataset(recipe["dataset"], args.data_root, train=False)
    loader = data.DataLoader(test_set, batch_size=args.batch_size, shuffle=False)
    loss, acc = evaluate(model, loader, recipe["dataset"], args.device, args.limit_test_batches)
    print(f"{recipe['model']} on {recipe['dataset']} test set after {ckpt['epoch']} epochs: "
          f"loss {loss:.4f}, accuracy {acc:.2f}%")
    return 0


__all__ = ["run_train", "run_evaluate", "evaluate", "train_one_epoch"]
