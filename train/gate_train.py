"""Train the "no digit" gate beside the reference CNN, calibrate its threshold, publish it.

    python -m train --model gate                        # -> artifacts/gate.keras
    python -m train --model gate --nondigits 4000 --epochs 2 --out /tmp/a   # a quick run

The gate learns MNIST training digits (as they are, and restyled the way photos arrive) against
non-digits the project draws from a seed (``common.nondigits``: strokes, shapes, letters and
symbols from fonts, textures, crops of scenes, two digits in one crop). Its threshold is set on
validation data neither model trained on: the last ``--validation-split`` of MNIST's training
digits (the ones the reference CNN holds out too) against non-digits of another seed; the
threshold is the digit probability below which ``--false-refusals`` of those digits fall. MNIST's
test digits are only measured, never used to choose.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from common import nondigits, publish
from common.artifacts import (
    GATE_CONFIG_FILE,
    GATE_FILE,
    GATE_METRICS_FILE,
    drop_exports,
    weights_sha256,
)
from common.data import load_mnist
from common.flags import fraction, option, positive_float, positive_int, seed
from common.tf import import_tensorflow
from train import gate_data
from train.gate_model import CLASSES, build_gate
from train.model import MODELS
from train.train import check_out, data_sha256, library_versions

MODEL = "gate"
VALIDATION_SEED = 1_000_003  # added to --seed for the validation non-digits and restyles


@dataclass
class GateConfig:
    """Resolved configuration of a gate training run; written to gate_config.json."""

    model: str = option(MODEL, "the model to train", choices=MODELS)
    data: str | None = option(None, "mnist.npz or IDX folder (default: $MNIST_DATA, else download)")
    out: str = option("artifacts", "artifacts folder to publish into")
    epochs: int = option(12, "training epochs", type=positive_int)
    nondigits: int = option(50_000, "generated non-digits to train on (the digits are MNIST's "
                                    "training split, and half as many restyled)",
                            type=positive_int)
    validation_split: float = option(0.1, "share of the training digits held out to set the "
                                          "threshold (the last ones, as the reference CNN's)",
                                     type=fraction)
    validation_nondigits: int = option(4_000, "generated non-digits (another seed) to measure the "
                                              "threshold on", type=positive_int)
    false_refusals: float = option(0.005, "share of the validation digits the threshold refuses",
                                   type=fraction)
    batch_size: int = option(128, "batch size", type=positive_int)
    learning_rate: float = option(2e-3, "peak learning rate (Adam, cosine decay to 0)",
                                  type=positive_float)
    workers: int = option(2, "processes drawing the non-digits", type=positive_int)
    seed: int = option(42, "random seed: non-digits, restyles, weights, order", type=seed)
    verbose: bool = option(False, "show TensorFlow's C++ logs")


def run(cfg: GateConfig) -> dict:
    """Make the sets, train, calibrate and publish the gate; returns its metrics."""
    check_out(cfg.out)
    with publish.exclusive(cfg.out):
        return _run(cfg)


def _run(cfg: GateConfig) -> dict:
    ds = load_mnist(cfg.data)
    tf = import_tensorflow(cfg.verbose)
    import keras

    tf.config.experimental.enable_op_determinism()
    split = int(math.floor(len(ds.x_train) * (1.0 - cfg.validation_split)))  # as Keras splits
    tick = time.perf_counter()
    print(f"drawing {cfg.nondigits} non-digits and restyling digits ({cfg.workers} processes)",
          flush=True)
    fit = gate_data.gate_set(ds.x_train[:split], cfg.seed, cfg.nondigits, workers=cfg.workers)
    val = gate_data.gate_set(ds.x_train[split:], cfg.seed + VALIDATION_SEED,
                             cfg.validation_nondigits, workers=cfg.workers, shuffle=False)
    print(f"  {time.perf_counter() - tick:.0f} s", flush=True)

    keras.utils.set_random_seed(cfg.seed)
    model = build_gate()
    publish.check_space(cfg.out, 3 * 12 * model.count_params() + 2_000_000, "training")
    steps = cfg.epochs * math.ceil(len(fit.x) / cfg.batch_size)
    model.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps)),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    digits, others = int(fit.y.sum()), int((1 - fit.y).sum())
    print(f"training the gate on {digits} digits against {others} non-digits ({cfg.epochs} "
          f"epochs, batch {cfg.batch_size})", flush=True)
    start = time.perf_counter()
    history = model.fit(_inputs(fit.x), fit.y, epochs=cfg.epochs, batch_size=cfg.batch_size,
                        shuffle=True, verbose=2).history
    wall = time.perf_counter() - start
    loss = float(history["loss"][-1])
    if not math.isfinite(loss):
        raise ValueError(f"training diverged (loss {loss}); nothing published; lower "
                         "--learning-rate")

    scores = digit_scores(model, val.x)
    calibration = calibrate(scores, val, cfg.false_refusals)
    test = digit_scores(model, ds.x_test)
    metrics = {
        "model": MODEL,
        "classes": list(CLASSES),
        "threshold": calibration["threshold"],
        "calibration": calibration,
        "test_false_refusals": round(float((test < calibration["threshold"]).mean()), 6),
        "test_source": "MNIST's test digits (measured, never used to choose)",
        "parameters": int(model.count_params()),
        "epochs": cfg.epochs,
        "training_digits": digits,
        "training_nondigits": others,
        "nondigit_kinds": list(nondigits.KINDS),
        "final_loss": round(loss, 6),
        "history": {k: [round(float(v), 6) for v in vs] for k, vs in history.items()},
        "wall_time_s": round(wall, 1),
        "seed": cfg.seed,
        "data_source": ds.source,
        "data_sha256": data_sha256(ds.x_train, ds.y_train),
        "versions": library_versions(),
    }
    with publish.staging(cfg.out) as stage:
        drop_exports(stage)
        with publish.atomic_path(stage / GATE_FILE) as tmp:
            model.save(tmp)
        metrics["weights_sha256"] = weights_sha256(stage / GATE_FILE)
        publish.write_json(stage / GATE_CONFIG_FILE, asdict(cfg))
        publish.write_json(stage / GATE_METRICS_FILE, metrics)
    return metrics


def calibrate(scores: np.ndarray, val: gate_data.GateSet, false_refusals: float) -> dict:
    """The threshold on the digit probability that refuses ``false_refusals`` of ``val``'s
    digits, and what it does on ``val``'s non-digits (recorded in the manifest)."""
    digit = val.y == 1
    threshold = float(np.quantile(scores[digit], false_refusals))
    refused = scores < threshold
    return {
        "threshold": round(threshold, 6),
        "method": (f"the {false_refusals:.1%} quantile of the gate's digit probability on "
                   "held-out MNIST training digits (the last of the training split, as they are "
                   "and restyled like photos), so about that share of them is refused; chosen "
                   "without test data"),
        "validation_digits": int(digit.sum()),
        "validation_nondigits": int((~digit).sum()),
        "validation_false_refusals": round(float(refused[digit].mean()), 6),
        "validation_refusals": round(float(refused[~digit].mean()), 6),
        "validation_refusals_by_kind": {k: round(v, 4) for k, v in
                                        val.kind_rates(refused).items() if k != "digit"},
        "nondigit_settings": nondigits.TRAIN.name,
    }


def digit_scores(model, images: np.ndarray) -> np.ndarray:
    """The Keras gate's digit probability for each uint8 [N,28,28] image."""
    out = model.predict(_inputs(images), batch_size=1024, verbose=0)
    return out[:, CLASSES.index("digit")].astype(np.float64)


def _inputs(images: np.ndarray) -> np.ndarray:
    return images[..., np.newaxis].astype(np.float32) / np.float32(255)


def summary(metrics: dict, out: str) -> str:
    """The closing lines printed after training."""
    c = metrics["calibration"]
    return (f"\"no digit\" gate: threshold {metrics['threshold']:.3f} refuses "
            f"{c['validation_refusals']:.1%} of {c['validation_nondigits']} validation non-digits "
            f"and {c['validation_false_refusals']:.2%} of {c['validation_digits']} validation "
            f"digits; {metrics['test_false_refusals']:.2%} of MNIST's test digits "
            f"({metrics['epochs']} epochs in {metrics['wall_time_s']:.0f} s)\n"
            f"artifacts in {out}/: {GATE_FILE}, {GATE_METRICS_FILE}, {GATE_CONFIG_FILE}")
