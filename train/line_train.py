"""Train the line reader with CTC on photographed lines of MNIST training digits; publish it.

    python -m train --model line_reader                       # -> artifacts/line_reader.keras
    python -m train --model line_reader --lines 3000 --epochs 2 --out /tmp/a   # a quick run

The lines are photos of 1-8 digits (``common.photos.line_sample``: touching and overlapping
neighbours, thin, thick and broken strokes, slant, sizes varied within a line, paper, light,
blur, noise, JPEG) cut into strips by the runtime's own line finder. Making one costs about
10 ms, training on one about 1 ms, so ``--lines`` photos are made once (in ``--workers``
processes) and every epoch varies them: a share of the strips are joined in pairs into longer
lines (new neighbours, new lengths) and every strip is stretched or squeezed a little. Each epoch
ends with the exact-number rate on lines made from MNIST *test* digits.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from common import publish, strips
from common.artifacts import (
    READER_CONFIG_FILE,
    READER_CURVES_FILE,
    READER_FILE,
    READER_HISTORY_FILE,
    READER_METRICS_FILE,
    drop_exports,
    weights_sha256,
)
from common.data import load_mnist
from common.flags import option, positive_float, positive_int, seed
from common.tf import import_tensorflow
from mnist_edge import imageops as ops
from train import checkpoint
from train.line_model import build_line_reader
from train.model import MODELS
from train.train import check_out, data_sha256, library_versions

MODEL = "line_reader"
JOIN = 0.3        # share of each epoch's strips joined to another (when both hold <= 8 digits)
STRETCH = 0.2     # strips are stretched by exp(U(-0.2, 0.2)) along the line


@dataclass
class LineReaderConfig:
    """Resolved configuration of a line-reader training run; written to line_reader_config.json."""

    model: str = option(MODEL, "the model to train: the digit classifier or the line reader",
                        choices=MODELS)
    data: str | None = option(None, "mnist.npz or IDX folder (default: $MNIST_DATA, else download)")
    out: str = option("artifacts", "artifacts folder to publish into")
    epochs: int = option(6, "training epochs: passes over the training lines", type=positive_int)
    lines: int = option(30_000, "photographed training lines made once and varied every epoch",
                        type=positive_int)
    test_lines: int = option(1_000, "lines made from MNIST test digits to measure each epoch",
                             type=positive_int)
    batch_size: int = option(64, "batch size: lines per gradient step", type=positive_int)
    learning_rate: float = option(2e-3, "peak learning rate (Adam, cosine decay to 0)",
                                  type=positive_float)
    workers: int = option(2, "processes making the lines", type=positive_int)
    seed: int = option(42, "random seed: lines, weights, order", type=seed)
    resume: bool = option(False, "continue an interrupted run from its last completed epoch")
    verbose: bool = option(False, "show TensorFlow's C++ logs")


def run(cfg: LineReaderConfig) -> dict:
    """Make the lines, train, measure and publish the line reader; returns its metrics."""
    check_out(cfg.out)
    with publish.exclusive(cfg.out):
        return _run(cfg)


def _run(cfg: LineReaderConfig) -> dict:
    ds = load_mnist(cfg.data)
    config = asdict(cfg) | {"data_path": str(Path(ds.source).resolve()),
                            "data_sha256": data_sha256(ds.x_train, ds.y_train)}
    tf = import_tensorflow(cfg.verbose)
    import keras

    tf.config.experimental.enable_op_determinism()
    folder = checkpoint.folder_for(cfg.out, MODEL)
    resumed = checkpoint.load(cfg.out, config, MODEL) if cfg.resume else None
    if cfg.resume and not resumed:
        print(f"nothing to resume in {folder}; starting fresh", flush=True)
    if not resumed:
        checkpoint.discard(cfg.out, MODEL)
    train_lines = _lines(cfg, ds.source, "train", cfg.lines, folder)
    test_lines = _lines(cfg, ds.source, "test", cfg.test_lines, folder)
    steps_per_epoch = math.ceil(len(train_lines.labels) / cfg.batch_size)
    if resumed:
        model, state = resumed
        first_epoch, history, wall_before = state["epoch"], state["history"], state["wall_time_s"]
        print(f"resuming after epoch {first_epoch} from {folder}", flush=True)
    else:
        keras.utils.set_random_seed(cfg.seed)
        model = build_line_reader(logits=True)
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate, decay_steps=cfg.epochs * steps_per_epoch)
        model.compile(optimizer=keras.optimizers.Adam(schedule))
        first_epoch, history, wall_before = 0, {}, 0.0
    publish.check_space(cfg.out, 3 * 12 * model.count_params() + 2_000_000, "training")
    step = _train_step(tf, model)
    print(f"training the line reader on {len(train_lines.labels)} lines ({cfg.epochs} epochs, "
          f"batch {cfg.batch_size}); measuring on {len(test_lines.labels)} lines of test digits",
          flush=True)
    start = time.perf_counter()
    for epoch in range(first_epoch, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        tick = time.perf_counter()
        losses = [float(step(*batch)) for batch in
                  strips.batches(vary(train_lines, rng), cfg.batch_size, rng)]
        loss = float(np.mean(losses))
        if not math.isfinite(loss):
            raise ValueError(f"training diverged in epoch {epoch + 1} (loss {loss}); nothing "
                             "published; lower --learning-rate")
        measured = measure(model, test_lines)
        for key, value in (("loss", loss), ("exact_rate", measured["exact_rate"]),
                           ("digit_accuracy", measured["digit_accuracy"])):
            history.setdefault(key, []).append(value)
        print(f"epoch {epoch + 1}/{cfg.epochs}: loss {loss:.3f}, test lines read exactly "
              f"{measured['exact_rate']:.2%}, digits {measured['digit_accuracy']:.2%} "
              f"({time.perf_counter() - tick:.0f} s)", flush=True)
        checkpoint.save(cfg.out, MODEL, model, epoch + 1, config, history,
                        wall_before + time.perf_counter() - start)
    wall = wall_before + time.perf_counter() - start

    reader = build_line_reader()
    reader.set_weights(model.get_weights())
    measured = measure(reader, test_lines, probabilities=True)
    metrics = {
        "model": MODEL,
        "test_exact_rate": measured["exact_rate"],
        "test_digit_accuracy": measured["digit_accuracy"],
        "test_lines": len(test_lines.labels),
        "test_source": "lines photographed from MNIST test digits (common.photos.line_sample)",
        "parameters": int(reader.count_params()),
        "epochs": cfg.epochs,
        "train_lines": len(train_lines.labels),
        "train_lines_skipped": train_lines.skipped,
        "wall_time_s": round(wall, 1),
        "seed": cfg.seed,
        "data_source": ds.source,
        "versions": library_versions(),
    }
    with publish.staging(cfg.out) as stage:
        drop_exports(stage)
        with publish.atomic_path(stage / READER_FILE) as tmp:
            reader.save(tmp)
        metrics["weights_sha256"] = weights_sha256(stage / READER_FILE)
        publish.write_json(stage / READER_HISTORY_FILE, history)
        with publish.atomic_path(stage / READER_CURVES_FILE) as tmp:
            plot_history(history, tmp)
        publish.write_json(stage / READER_CONFIG_FILE, asdict(cfg))
        publish.write_json(stage / READER_METRICS_FILE, metrics)
    checkpoint.discard(cfg.out, MODEL)
    return metrics


def _lines(cfg: LineReaderConfig, data: str, split: str, n: int, folder: Path) -> strips.Lines:
    """The run's lines of ``split``, kept in the checkpoint folder so a resumed run reuses them."""
    cache = folder / f"lines-{split}-{cfg.seed}-{n}.npz"
    if cache.is_file():
        return strips.load_lines(cache)
    seed_for = cfg.seed if split == "train" else cfg.seed + 1
    print(f"making {n} {split} lines in {cfg.workers} processes", flush=True)
    made = strips.make_lines(data, split, seed_for, 0, n, cfg.workers, progress=_progress)
    folder.mkdir(parents=True, exist_ok=True)
    with publish.atomic_path(cache) as tmp:
        strips.save_lines(made, tmp)
    return made


def _progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        print(f"  {done}/{total} lines", flush=True)


def _train_step(tf, model):
    """One compiled gradient step of the CTC loss (blank last, explicit lengths)."""
    optimizer = model.optimizer

    @tf.function(reduce_retracing=True)
    def step(x, y, label_length, logit_length):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.ctc_loss(y, logits, label_length, logit_length,
                                                 logits_time_major=False,
                                                 blank_index=strips.BLANK))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return step


def vary(lines: strips.Lines, rng: np.random.Generator) -> strips.Lines:
    """One epoch's lines: a share joined in pairs, each stretched a little, padded again."""
    out = strips.Lines([], [])
    n = len(lines.labels)
    for i in range(n):
        s, label = strips.trim(lines.strips[i]), lines.labels[i]
        if rng.random() < JOIN:
            j = int(rng.integers(n))
            if len(label) + len(lines.labels[j]) <= 8:
                s = _join(s, strips.trim(lines.strips[j]), int(rng.integers(-2, 10)))
                label += lines.labels[j]
        width = max(strips.STRIDE, int(round(s.shape[1] * math.exp(rng.uniform(-STRETCH,
                                                                                  STRETCH)))))
        s = ops.resize(s.astype(np.float32), strips.HEIGHT, width)
        out.strips.append(strips.pad(s, extra=int(rng.integers(0, 6))))
        out.labels.append(label)
    return out


def _join(a: np.ndarray, b: np.ndarray, gap: int) -> np.ndarray:
    """Two strips side by side ``gap`` columns apart (a negative gap overlaps them)."""
    out = np.zeros((a.shape[0], max(a.shape[1], a.shape[1] + gap + b.shape[1])), dtype=a.dtype)
    out[:, :a.shape[1]] = a
    at = a.shape[1] + gap
    np.maximum(out[:, at:at + b.shape[1]], b, out=out[:, at:at + b.shape[1]])
    return out


def measure(model, lines: strips.Lines, probabilities: bool = False) -> dict[str, float]:
    """Exact-number rate and per-digit accuracy (1 - edit distance / digits) of greedy reading."""
    import keras

    exact = errors = digits = 0
    for x, y, label_length, _ in strips.batches(lines, 256, None):
        out = model(x, training=False)
        scores = np.asarray(out if probabilities else keras.ops.softmax(out))
        for k in range(len(x)):
            truth = "".join(str(int(c)) for c in y[k, :label_length[k]])
            read = strips.greedy(scores[k])
            exact += read == truth
            errors += strips.edit_distance(read, truth)
            digits += len(truth)
    return {"exact_rate": exact / max(1, len(lines.labels)),
            "digit_accuracy": max(0.0, 1 - errors / max(1, digits))}


def plot_history(history: dict, path: Path) -> None:
    """CTC loss and the exact-number rate on test lines per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    axes[0].plot(epochs, history["loss"], "o-", label="training lines")
    axes[0].set_title("CTC loss")
    axes[1].plot(epochs, history["exact_rate"], "o-", label="numbers read exactly")
    axes[1].plot(epochs, history["digit_accuracy"], "s--", label="digits (edit distance)")
    axes[1].set_title("Lines of MNIST test digits")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("mnist-edge line reader: training curves")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def summary(metrics: dict, out: str) -> str:
    """The closing lines printed after training."""
    return (f"line reader: {metrics['test_exact_rate']:.2%} of {metrics['test_lines']} test "
            f"lines read exactly (digits {metrics['test_digit_accuracy']:.2%}) after "
            f"{metrics['epochs']} epochs in {metrics['wall_time_s']:.0f} s\n"
            f"artifacts in {out}/: {READER_FILE}, {READER_HISTORY_FILE}, {READER_CURVES_FILE}, "
            f"{READER_METRICS_FILE}, {READER_CONFIG_FILE}")

