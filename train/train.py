"""Train a registered digit classifier on MNIST and publish model, history, plots and metrics.

    python -m train                                  # the reference: 10 epochs, Adam, batch 64
    python -m train --model edge --out artifacts-edge   # the edge CNN, with its own recipe
    python -m train --data ../shared/data/mnist.npz --epochs 1 --out /tmp/a
"""

from __future__ import annotations

import hashlib
import math
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from common import data as mnist_data
from common import dataset, publish
from common.artifacts import (
    CONFIG_FILE,
    CONFUSION_FILE,
    CURVES_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    drop_exports,
    weights_sha256,
)
from common.flags import fraction, option, positive_float, positive_int, seed
from common.tf import import_tensorflow
from common.work import multiply_adds
from train import checkpoint
from train.augment import augmented
from train.model import (
    CLASSIFIERS,
    DEFAULT_CLASSIFIER,
    MODELS,
    OPTIMIZERS,
    compile_model,
)

LR_SCHEDULES = ("cosine", "constant")


def _recipe_text(key: str) -> str:
    """How each registered classifier's recipe sets ``key``, for --help."""
    def show(value) -> str:
        return ("on" if value else "off") if isinstance(value, bool) else str(value)
    return ", ".join(f"{a.name} {show(a.recipe[key])}" for a in CLASSIFIERS.values()
                     if key in a.recipe)


@dataclass
class TrainConfig:
    """Resolved training configuration (the flags of python -m train); written to config.json."""

    model: str = option(DEFAULT_CLASSIFIER, "the model to train: a digit classifier ("
                        + "; ".join(f"{a.name}: {a.description}" for a in CLASSIFIERS.values())
                        + "), the line reader or the gate (--model line_reader --help: its flags)",
                        choices=MODELS)
    data: str | None = option(None, "mnist.npz or IDX folder, MNIST's or another 28x28 "
                                    "grayscale dataset's with labels 0..9, such as Fashion-MNIST "
                                    "(default: $MNIST_DATA, else download)")
    labels: str | None = option(None, "a text file of the 10 class names, one per line in label "
                                      "order (default: labels.txt beside the data, else the "
                                      "known dataset's names, else 0..9)")
    kind: str | None = option(None, "what the images are: digits (handwritten: the runtime's "
                                    "digit photo path, number reader and gate) or items (any "
                                    "other picture: its generic path); default: the known "
                                    "dataset's, else items", choices=dataset.KINDS)
    out: str = option("artifacts", "artifacts folder to publish into")
    epochs: int | None = option(None, "training epochs: passes over the training split (default: "
                                      "the model's recipe, " + _recipe_text("epochs") + ")",
                                type=positive_int)
    batch_size: int = option(64, "batch size: images per gradient step", type=positive_int)
    optimizer: str = option("adam", "optimizer", choices=OPTIMIZERS)
    learning_rate: float | None = option(None, "learning rate (default: the model's recipe, "
                                               + _recipe_text("learning_rate") + "; else the "
                                               "optimizer's Keras default, 0.001 for Adam)",
                                         type=positive_float)
    validation_split: float = option(0.1, "fraction of the training data held out for validation",
                                     type=fraction)
    lr_schedule: str = option("cosine", "learning-rate schedule: cosine decays to 0 over the run",
                              choices=LR_SCHEDULES)
    augment: bool | None = option(None, "redraw every training batch with small seeded turns, "
                                        "scales, shifts and stroke-width changes (default: the "
                                        "model's recipe, " + _recipe_text("augment") + ")")
    seed: int = option(42, "random seed: Python, numpy and TensorFlow; ops run deterministically",
                       type=seed)
    limit: int | None = option(None, "use only the first N training images (quick runs)",
                               type=positive_int)
    resume: bool = option(False, "continue an interrupted run from its last completed epoch")
    verbose: bool = option(False, "show TensorFlow's C++ logs")


def with_recipe(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with every flag left at None set from its model's recipe (given flags win)."""
    if cfg.model not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {cfg.model!r}; choose one of "
                         f"{', '.join(CLASSIFIERS)}")
    recipe = CLASSIFIERS[cfg.model].recipe
    return replace(cfg, **{k: v for k, v in recipe.items() if getattr(cfg, k) is None})


def learning_rate(cfg: TrainConfig, total_steps: int):
    """The optimizer's learning rate: a number, or a schedule over ``total_steps`` steps."""
    import keras

    base = cfg.learning_rate if cfg.learning_rate is not None else 1e-3
    if cfg.lr_schedule == "constant":
        return cfg.learning_rate
    if cfg.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(base, decay_steps=max(total_steps, 1))
    raise ValueError(f"unknown learning-rate schedule {cfg.lr_schedule!r}; "
                     f"choose one of {', '.join(LR_SCHEDULES)}")


def run(cfg: TrainConfig) -> dict:
    """Train, evaluate on the test set and publish every artifact; returns the metrics.

    The artifacts folder is locked for the whole run: a second run on it waits its turn.
    """
    cfg = with_recipe(cfg)
    check_out(cfg.out)
    with publish.exclusive(cfg.out):
        return _run(cfg)


def _run(cfg: TrainConfig) -> dict:
    assert cfg.epochs is not None  # set by with_recipe
    ds = mnist_data.load_mnist(cfg.data)
    identity = dataset.identify(ds, cfg.labels, cfg.kind)
    x_train, y_train = ds.x_train, ds.y_train
    # The checkpoint also records which data it was trained on, however --data or MNIST_DATA
    # named it, so a resume cannot continue on other data.
    config = asdict(cfg) | {"data_path": str(Path(ds.source).resolve()),
                            "data_sha256": data_sha256(x_train, y_train)}
    if cfg.limit:
        x_train, y_train = x_train[: cfg.limit], y_train[: cfg.limit]

    tf = import_tensorflow(cfg.verbose)
    import keras

    tf.config.experimental.enable_op_determinism()
    resumed = checkpoint.load(cfg.out, config) if cfg.resume else None
    if cfg.resume and not resumed:
        print(f"nothing to resume in {checkpoint.folder_for(cfg.out)}; starting fresh",
              flush=True)
    if resumed:
        model, state = resumed
        first_epoch, history, wall_before = state["epoch"], state["history"], state["wall_time_s"]
        print(f"resuming after epoch {first_epoch} from {checkpoint.folder_for(cfg.out)}",
              flush=True)
    else:
        checkpoint.discard(cfg.out)
        keras.utils.set_random_seed(cfg.seed)
        steps = cfg.epochs * int(np.ceil(len(x_train) * (1 - cfg.validation_split)
                                         / cfg.batch_size))
        model = compile_model(CLASSIFIERS[cfg.model].build(), cfg.optimizer,
                              learning_rate(cfg, steps))
        first_epoch, history, wall_before = 0, {}, 0.0
    # model.keras holds the weights and the optimizer's state (Adam: two moments), 4 bytes
    # each; a run writes it for the checkpoint (two at a rotation) and for the published set.
    publish.check_space(cfg.out, 3 * 12 * model.count_params() + 2_000_000, "training")
    # Seeding from the epoch makes a resumed run reproducible too (its shuffle order differs
    # from an uninterrupted run's: tf.data's reshuffling cannot be restarted mid-run).
    keras.utils.set_random_seed(cfg.seed + first_epoch)
    print(f"training the {cfg.model} classifier ({model.count_params():,} parameters, "
          f"{multiply_adds(model):,} multiply-adds per image) on {len(x_train)} images of "
          f"{identity.name} ({identity.kind}) from {ds.source} ({cfg.epochs} epochs, batch "
          f"{cfg.batch_size}, {cfg.optimizer}, "
          f"{cfg.validation_split:.0%} held out for validation"
          f"{', augmented' if cfg.augment else ''})", flush=True)
    start = time.perf_counter()
    if first_epoch < cfg.epochs:
        fit = dict(initial_epoch=first_epoch, epochs=cfg.epochs,
                   verbose=1 if sys.stdout.isatty() else 2,
                   callbacks=[checkpoint.callback(cfg.out, config, history, wall_before)])
        if cfg.augment:
            # the same held-out tail as Keras's validation_split, never augmented
            split = math.ceil(len(x_train) * (1.0 - cfg.validation_split))
            x_in = mnist_data.to_model_input(x_train)
            model.fit(augmented(x_in[:split], y_train[:split], cfg.batch_size,
                                cfg.seed + first_epoch),
                      validation_data=(x_in[split:], y_train[split:]) if split < len(x_in)
                      else None, shuffle=False, **fit)  # shuffled by the dataset
        else:
            model.fit(mnist_data.to_model_input(x_train), y_train, batch_size=cfg.batch_size,
                      validation_split=cfg.validation_split, shuffle=True, **fit)
    wall = wall_before + time.perf_counter() - start

    x_test = mnist_data.to_model_input(ds.x_test)
    test_loss, test_acc = model.evaluate(x_test, ds.y_test, batch_size=1024, verbose=0)
    predicted = model.predict(x_test, batch_size=1024, verbose=0).argmax(axis=1)
    confusion = confusion_matrix(ds.y_test, predicted)
    check_finite(model, test_loss)
    metrics = {
        "test_accuracy": float(test_acc),
        "test_loss": float(test_loss),
        "test_images": int(len(ds.y_test)),
        "per_class_accuracy": per_class_accuracy(confusion),
        "model": cfg.model,
        "parameters": int(model.count_params()),
        "multiply_adds": multiply_adds(model),
        "epochs": cfg.epochs,
        "augment": bool(cfg.augment),
        "train_images": int(len(x_train)),
        "wall_time_s": round(wall, 1),
        "seed": cfg.seed,
        "data_source": ds.source,
        "dataset": identity.as_dict(),
        "versions": library_versions(),
    }

    with publish.staging(cfg.out) as stage:
        drop_exports(stage)
        with publish.atomic_path(stage / MODEL_FILE) as tmp:
            model.save(tmp)
        metrics["weights_sha256"] = weights_sha256(stage / MODEL_FILE)
        publish.write_json(stage / HISTORY_FILE, history)
        with publish.atomic_path(stage / CURVES_FILE) as tmp:
            plot_history(history, tmp, cfg.model)
        with publish.atomic_path(stage / CONFUSION_FILE) as tmp:
            plot_confusion(confusion, test_acc, tmp, identity.classes, identity.name)
        publish.write_json(stage / CONFIG_FILE, asdict(cfg))
        publish.write_json(stage / METRICS_FILE, metrics)
    checkpoint.discard(cfg.out)
    return metrics


def library_versions() -> dict[str, str]:
    """The versions a training run used, for its metrics."""
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def check_out(out: str) -> None:
    """Refuse, before a long training, an --out that cannot receive the artifacts.

    Publishing writes a staging folder and the checkpoint next to ``out``, so its parent (or
    the nearest existing ancestor, for a parent still to be created) must take new files. Free
    space is checked once the model is built (its size sets the need); a disk that other
    programs fill up during training is still only found when it happens.
    """
    path = Path(out).absolute()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{out}: not a folder; --out names the folder to publish the artifacts "
                         "into (created if missing)")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{parent}: not a folder, so --out {out} cannot be created")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ValueError(f"{parent}: cannot write there ({exc.strerror or exc}), so --out {out} "
                         "cannot be published; choose a writable --out") from None


def data_sha256(x: np.ndarray, y: np.ndarray) -> str:
    """Hex sha256 of the training images and labels (about 0.1 s for MNIST's 47 MB)."""
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()


def check_finite(model, test_loss: float) -> None:
    """Refuse to publish a model that diverged: its test loss or a weight is NaN or infinite."""
    if not math.isfinite(test_loss):
        raise ValueError(f"training diverged: test loss is {test_loss}, not finite; nothing "
                         "published; lower --learning-rate")
    bad = [w.name for w in model.weights if not np.isfinite(np.asarray(w)).all()]
    if bad:
        raise ValueError(f"training diverged: weights {', '.join(bad)} are not finite; nothing "
                         "published; lower --learning-rate")


def per_class_accuracy(confusion: np.ndarray) -> dict[str, float | None]:
    """Accuracy on each digit's test images; None (null in JSON) for a digit with no images."""
    totals = confusion.sum(axis=1)
    return {str(d): float(confusion[d, d] / totals[d]) if totals[d] else None
            for d in range(len(confusion))}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int = 10) -> np.ndarray:
    """Counts [true, predicted]."""
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (y_true.astype(np.int64), y_pred.astype(np.int64)), 1)
    return m


def plot_history(history: dict, path: Path, model: str = DEFAULT_CLASSIFIER) -> None:
    """Loss and accuracy per epoch, training vs validation, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in ((axes[0], "loss", "Loss (sparse categorical cross-entropy)"),
                           (axes[1], "accuracy", "Accuracy")):
        ax.plot(epochs, history[key], "o-", label="training")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "s--", label="validation")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"mnist-edge {model} classifier: training curves")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def plot_confusion(confusion: np.ndarray, accuracy: float, path: Path,
                   classes: tuple[str, ...] = dataset.DIGITS, name: str = "MNIST") -> None:
    """Confusion matrix on the test set, counts in each cell, rows and columns named by
    ``classes``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    digits = classes == dataset.DIGITS
    fig, ax = plt.subplots(figsize=(7, 6.2) if digits else (8.4, 7.4))
    im = ax.imshow(np.log1p(confusion), cmap="Blues")
    threshold = np.log1p(confusion).max() / 2
    for i in range(10):
        for j in range(10):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if np.log1p(confusion[i, j]) > threshold else "black")
    ax.set_xticks(range(10), classes, rotation=0 if digits else 45,
                  ha="center" if digits else "right")
    ax.set_yticks(range(10), classes)
    ax.set_xlabel("predicted digit" if digits else "predicted class")
    ax.set_ylabel("true digit" if digits else "true class")
    ax.set_title(f"Confusion matrix, {name} test set ({confusion.sum()} images, "
                 f"accuracy {accuracy:.2%})")
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def summary(metrics: dict, out: str) -> str:
    """The closing lines printed after training."""
    return (f"test accuracy {metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f}) "
            f"after {metrics['epochs']} epochs in {metrics['wall_time_s']:.0f} s\n"
            f"artifacts in {out}/: {MODEL_FILE}, {HISTORY_FILE}, {CURVES_FILE}, {CONFUSION_FILE}, "
            f"{METRICS_FILE}, {CONFIG_FILE}")
