"""``edgefw train``: train zoo models on MNIST / Fashion-MNIST."""

from __future__ import annotations

import argparse

import numpy as np

from edgefw.errors import EdgeFWError

DATASETS = ("mnist", "fashion-mnist")
MODELS = ("mlp", "lenet", "mobilenet")


def _load_dataset(name: str, path: str | None):
    from edgefw import datasets

    if name == "mnist":
        return datasets.load_mnist(path)
    if path is None:
        raise EdgeFWError(
            "--dataset fashion-mnist needs --data PATH (a folder with the four Fashion-MNIST "
            "IDX .gz files; edgefw ships only MNIST)"
        )
    return datasets.load_fashion_mnist(path)


def _images(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], the zoo models' input."""
    return (x.astype(np.float32) / 255.0)[:, None, :, :]


def cmd_train(args: argparse.Namespace) -> int:
    import edgefw
    from edgefw import models, nn, optim

    edgefw.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = _load_dataset(args.dataset, args.data)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    model = models.build(args.model)
    model.compile(optim.Adam(model.parameters(), lr=args.lr), nn.CrossEntropyLoss(),
                  metrics=["accuracy"])
    print(f"training {args.model} on {args.dataset}: {len(x_train)} images, "
          f"{model.num_parameters():,} parameters")
    model.fit(_images(x_train), y_train.astype(np.int64), epochs=args.epochs,
              batch_size=args.batch_size, validation_data=(_images(x_test),
                                                           y_test.astype(np.int64)),
              verbose=args.verbose, seed=args.seed)
    loss, acc = model.evaluate(_images(x_test), y_test.astype(np.int64), batch_size=256)
    print(f"test accuracy: {acc * 100:.2f}%  (loss {loss:.4f})")
    if args.out:
        path = edgefw.save(model, args.out)
        print(f"saved checkpoint: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a zoo model and save a checkpoint")
    train.add_argument("--model", choices=MODELS, default="mlp")
    train.add_argument("--dataset", choices=DATASETS, default="mnist")
    train.add_argument("--data", help="folder with the dataset's IDX files (default: shipped "
                                      "MNIST)")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--limit", type=int, default=0, help="use only the first N images")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    train.add_argument("--out", help="checkpoint file to write (.npz)")
    train.set_defaults(func=cmd_train)
