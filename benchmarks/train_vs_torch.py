"""Train simple_cnn with pyengine and with PyTorch on the same recipe, and compare.

Same initial weights (PyTorch's default init under --seed, copied into pyengine), same data order
(pyengine's DataLoader order fed to both), same thread count, each framework in its own process.
Prints images/s and test accuracy for both, and their ratio.

    python -m benchmarks.train_vs_torch --epochs 1 --threads 2 [--backend numba]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

MEAN, STD = 0.2860, 0.3530


def _batches(args, train):
    from pyengine import data
    ds = data.FashionMNIST(root=args.data_root, train=train)
    loader = data.DataLoader(ds, batch_size=args.batch_size if train else 1000,
                             shuffle=train, seed=args.seed)
    return loader


def torch_model():
    """simple_cnn in PyTorch, with the parameter names of pyengine.models.simple_cnn."""
    import torch.nn as tnn
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(3136, 128), tnn.ReLU(), tnn.Linear(128, 10))


def train_and_test(args, train_step, predict):
    """The recipe both frameworks share: the same batches in the same order, then accuracy.

    ``train_step(x, y) -> loss`` and ``predict(x) -> class indices`` take numpy batches (x
    already normalised), so the loop, the data order and the timing are written once.
    Returns (images per second, test accuracy in %, last loss).
    """
    loader = _batches(args, True)
    seen, loss, t0 = 0, float("nan"), time.perf_counter()
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        for i, (x, y) in enumerate(loader):
            if args.limit_batches and i >= args.limit_batches:
                break
            loss = train_step((x.numpy() - MEAN) / STD, y.numpy())
            seen += x.shape[0]
    elapsed = time.perf_counter() - t0
    correct = total = 0
    for x, y in _batches(args, False):
        correct += int((predict((x.numpy() - MEAN) / STD) == y.numpy()).sum())
        total += y.shape[0]
    return seen / elapsed, 100.0 * correct / total, loss


def run_torch(args, weights_path):
    """Train in PyTorch; saves its initial weights for the pyengine run."""
    import torch
    import torch.nn.functional as TF
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = torch_model()
    np.savez(weights_path, **{k: v.detach().numpy() for k, v in model.state_dict().items()})
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)

    def train_step(x, y):
        loss = TF.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)

    def predict(x):
        with torch.no_grad():
            return model(torch.from_numpy(x)).argmax(1).numpy()

    rate, acc, loss = train_and_test(args, train_step, predict)
    return {"framework": "torch", "images_per_s": rate, "accuracy": acc, "final_loss": loss}


def run_pyengine(args, weights_path):
    """Train in pyengine from PyTorch's initial weights."""
    import pyengine as pe
    import pyengine.functional as F
    from pyengine import models, optim
    from pyengine.threads import set_num_threads
    set_num_threads(args.threads)
    pe.set_backend(args.backend)
    model = models.simple_cnn()
    with np.load(weights_path) as z:
        state = {k: z[k] for k in z.files}
    model.load_state_dict(_rename(state))
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)

    def train_step(x, y):
        loss = F.cross_entropy(model(pe.Tensor(x)), pe.Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.item())

    def predict(x):
        with pe.no_grad():
            return model(pe.Tensor(x)).argmax(dim=1).numpy()

    rate, acc, loss = train_and_test(args, train_step, predict)
    return {"framework": f"pyengine ({args.backend})", "images_per_s": rate, "accuracy": acc,
            "final_loss": loss}


def _rename(torch_state):
    """PyTorch Sequential names (0.weight, ...) -> pyengine.models.simple_cnn's names."""
    from pyengine import models
    names = list(models.simple_cnn().state_dict().keys())
    values = list(torch_state.values())
    if len(names) != len(values):
        raise ValueError(f"simple_cnn has {len(names)} tensors, the torch model {len(values)}")
    return dict(zip(names, values))


def main(argv=None):
    """Run both frameworks in their own processes and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--limit-batches", type=int, default=None)
    ap.add_argument("--framework", choices=("torch", "pyengine"), help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.framework:
        fn = run_torch if args.framework == "torch" else run_pyengine
        print(json.dumps(fn(args, args.weights)))
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "init.npz")
        for fw in ("torch", "pyengine"):
            cmd = [sys.executable, "-m", "benchmarks.train_vs_torch", *passthrough,
                   "--framework", fw, "--weights", weights]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                  cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for r in results:
        print(f"{r['framework']:20} {r['images_per_s']:10,.0f} images/s   "
              f"test accuracy {r['accuracy']:.2f}%   last loss {r['final_loss']:.4f}")
    t, p = results
    print(f"pyengine/torch: speed {p['images_per_s'] / t['images_per_s']:.2f}x, "
          f"accuracy difference {p['accuracy'] - t['accuracy']:+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
