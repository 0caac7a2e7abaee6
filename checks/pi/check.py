"""The pi-check pipeline: set up the ARM roots, run host and emulated CPUs, compare, report.

    from checks.pi.check import CheckConfig, run_check
    rows = run_check(CheckConfig(targets="pi4-arm64", images=1000))
"""

from __future__ import annotations

import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

from checks.pi import isa, packages, photos, rootfs
from checks.pi.common import PiCheckError, log
from checks.pi.compare import Row, as_information, compare, compare_gate, load_outputs
from checks.pi.report import write_reports
from checks.pi.targets import CLASSIFIER_KEYS, TARGETS, HostStack, Stack, Target, get_targets
from checks.worker import WORKER_FILE, Worker
from common.artifacts import MANIFEST_FILE, MODEL_FILE, exported_from
from common.artifacts import ROOT as REPO
from common.flags import option, positive_int
from common.formats import GATE_KEYS, INT8_STEPS, Tolerance, all_formats, get_format
from mnist_edge.backends import BACKENDS
from mnist_edge.digest import sha256_hex
from mnist_edge.errors import ModelError
from mnist_edge.formats import KINDS, TFLITE_INT8
from mnist_edge.manifest import read_manifest

JOB_TIMEOUT_S = 3600  # one file on up to 10,000 images under emulation
HOST_BACKENDS = {k.name: k.backends[0] for k in KINDS}  # the host's default backends (.venv)
FULL_SET_KEY = TFLITE_INT8.key  # runs on every test image; the other files on a subset
MIN_SUBSET = 1000              # the least a float/ONNX run may use and still pass
GATE_DIGITS = GATE_NONDIGITS = 500  # the gate's files: test digits and held-out non-digits
GATE_SEED = 4321


@dataclass
class CheckConfig:
    """Everything `make pi-check` can change (the flags of python -m checks.pi); defaults are
    CI's."""

    artifacts: Path = option(Path("artifacts"), "exported folder with manifest.json (make export)")
    data: str | None = option(None, "npz or IDX folder of the dataset the model was trained on "
                                    "(default: the one the manifest records, else $MNIST_DATA, "
                                    "else the Keras MNIST download); another is refused")
    targets: str = option("all", f"comma-separated: {', '.join(t.key for t in TARGETS)}, or all")
    images: int = option(10_000, "test images for the int8 TFLite file (fewer than 10000 fails the "
                                 "check)", type=positive_int)
    subset: int = option(1_000, "test images for the float TFLite and ONNX files (at least 1000 to "
                                "pass)", type=positive_int)
    batch: int = option(100, "images per predict() call", type=positive_int)
    jobs: int = option(2, "targets emulated at the same time (CPU cores)", type=positive_int)
    int8_steps: float | None = option(None, "allowed difference of raw int8 outputs, in "
                                            "quantization steps (default: the format table's, "
                                            "common/formats.py)")
    float_diff: float | None = option(None, "allowed difference of float outputs, in probability "
                                            "(default: the format table's, common/formats.py)")
    cache: Path = option(Path(".cache/pi"), "cache of debs, wheels and unpacked ARM roots")
    reports: Path = option(Path("reports"), "where pi.md and pi.json go")
    mirror: str = option("http://deb.debian.org/debian", "Debian mirror for debootstrap")
    prepare: bool = option(False, "only build the Debian roots and the device installs the "
                                  "selected targets need into --cache (downloads; no export "
                                  "needed), then stop: a later check starts from them")
    host_tflite_python: Path = option(Path(".venv-tflite/bin/python"), "host Python with "
                                      "tflite-runtime 2.14 and the runtime (make runtime-venvs): "
                                      "the reference for the 32-bit target")


def tolerance(cfg: CheckConfig, key: str) -> Tolerance:
    """The file's rule against the host: the format table's, unless a flag overrides its bound."""
    tol = get_format(key, all_formats()).tolerance
    override = cfg.int8_steps if tol.device_unit == INT8_STEPS else cfg.float_diff
    return tol if override is None else replace(tol, device_max_diff=override)


def _manifest_path(artifacts: Path) -> Path:
    path = artifacts / MANIFEST_FILE if artifacts.is_dir() or not artifacts.suffix else artifacts
    if not path.is_file():
        raise PiCheckError(f"{path}: no manifest; run `make train export` first or pass "
                           "--artifacts with an exported folder")
    return path


def snapshot_models(artifacts: Path, dest: Path, tries: int = 3) -> tuple[Path, list[dict]]:
    """Copy manifest.json and the files it lists into ``dest``; host and devices run the copy.

    A re-export while the check runs would otherwise hand the host and the devices different
    models. Sizes and hashes are checked here (and again by the runtime when it loads).
    """
    src = _manifest_path(artifacts)
    for attempt in range(tries):
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        (dest / MANIFEST_FILE).write_bytes(src.read_bytes())
        try:
            manifest = read_manifest(dest / MANIFEST_FILE)
        except ModelError as exc:
            raise PiCheckError(f"{src}: {str(exc).split(': ', 1)[-1]}") from None
        torn = []
        for entry in manifest.all_files:  # the line reader's files too: read runs them
            rel = entry.path.relative_to(dest)
            entry.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                data = (src.parent / rel).read_bytes()
            except OSError as exc:
                raise PiCheckError(f"{src.parent / rel}: {exc.strerror}; the manifest lists "
                                   "it, run `make export` again") from None
            entry.path.write_bytes(data)
            if sha256_hex(data) != entry.sha256:
                torn.append(str(rel))
        golden = manifest.data.get("golden") or {}
        if isinstance(golden.get("path"), str):  # the self-test's inputs and expected outputs
            data = (src.parent / golden["path"]).read_bytes()
            (dest / golden["path"]).write_bytes(data)
            if sha256_hex(data) != golden.get("sha256"):
                torn.append(golden["path"])
        if not torn:
            gate = manifest.data.get("gate") or {}
            return dest / MANIFEST_FILE, [*manifest.data["files"], *(gate.get("files") or [])]
        if attempt + 1 < tries:
            log(f"{', '.join(torn)} changed while copying (a re-export?); copying again")
            time.sleep(2 * (attempt + 1))
    raise PiCheckError(f"{src}: the files do not match their sha256 in the manifest after {tries} "
                       f"copies ({', '.join(torn)}); run `make export` again")


def _recorded_dataset(mpath: Path) -> dict | None:
    """The dataset the manifest says its model was trained on (None: MNIST, not recorded)."""
    try:
        record = read_manifest(mpath).data.get("dataset")
    except ModelError as exc:
        raise PiCheckError(str(exc)) from None
    return record if isinstance(record, dict) else None


def _load_test_set(data: str | None, record: dict | None, what: str
                   ) -> tuple[np.ndarray, np.ndarray, str]:
    from common.data import DataError
    from common.dataset import load_for

    try:
        mnist = load_for(record, data, what)
    except DataError as exc:
        raise PiCheckError(str(exc)) from None
    return mnist.x_test, mnist.y_test, mnist.source


@dataclass(frozen=True)
class Plan:
    """What every run of one check shares: the copied models, the images and how many of them."""

    work: Path                 # scratch folder: copied models, images, outputs
    manifest: Path             # the copied manifest.json
    entries: list[dict]        # its files
    counts: dict[str, int]     # images each file runs on
    batch: int                 # images per predict() call
    images: Path               # .npy of the test images
    photos: photos.PhotoSet | None  # number and single-digit photos for the photo path (None:
                                    # a model of another kind than digits, with no photo path)
    gate_images: Path | None = None    # .npy of test digits and non-digits for the gate's files
    gate_labels: np.ndarray | None = None  # 1 digit, 0 not
    threshold: float = 0.0     # the manifest's gate threshold


def plan_jobs(plan: Plan, name: str, backend_of, counts: dict[str, int] | None = None
              ) -> list[dict]:
    """predict jobs (checks/worker.py; ``gate_scores`` for the gate's files) for the files
    ``backend_of`` gives a backend to, on ``counts`` images (default: the plan's; a file
    missing from ``counts`` does not run)."""
    counts = plan.counts if counts is None else counts
    return [({"job": "predict", "images": str(plan.images), "count": counts[e["key"]]}
             if e["key"] not in GATE_KEYS else
             {"job": "gate_scores", "images": str(plan.gate_images)})
            | {"manifest": str(plan.manifest), "key": e["key"], "backend": backend_of(e),
               "batch": plan.batch, "out": str(plan.work / f"{name}.{e['key']}.npz")}
            for e in plan.entries if backend_of(e) and e["key"] in counts]


def target_counts(target: Target, plan: Plan) -> dict[str, int]:
    """The images each file runs on for ``target``; the files it does not run are left out.

    An instruction-set target runs the int8 files on as many images as the full-set file (each
    is held to Keras and to its float file there) and the float files on the subset: float
    kernels under TCG's AVX emulation take about 50 ms per image.
    """
    full = plan.counts[FULL_SET_KEY]
    counts = {k: n for k, n in plan.counts.items() if not target.only or k in target.only}
    if target.isa:
        precision = {e["key"]: e.get("precision") for e in plan.entries}
        counts = {k: full if precision.get(k) == "int8" else n for k, n in counts.items()}
    if target.max_images:
        counts = {k: min(n, target.max_images) for k, n in counts.items()}
    return counts


def host_counts(targets, plan: Plan) -> dict[str, int]:
    """The host runs each file on as many images as any target, and every classifier file on the
    full set when an instruction-set target is asked for (the host is a CPU model too)."""
    counts = dict(plan.counts)
    for target in targets:
        for k, n in target_counts(target, plan).items():
            counts[k] = max(counts[k], n)
    if any(t.isa for t in targets):
        counts |= {k: plan.counts[FULL_SET_KEY] for k in counts if k in CLASSIFIER_KEYS}
    return counts


def _run_jobs(worker: Worker, jobs: list[dict], what: str) -> tuple[dict, list[dict]]:
    """(environment, one result per job): each result is the job with its answer or its error."""
    results = []
    for job in jobs:
        answer = worker.call(job)
        results.append({**job, **answer} if answer["ok"] else {**job, "error": answer["error"]})
    env = worker.call({"job": "environment"})  # after the jobs: was TensorFlow imported?
    if not env.pop("ok"):
        raise PiCheckError(f"{what}: {env['error']}")
    return env, results


def prepare(cfg: CheckConfig) -> list[str]:
    """Build the roots and installs of the selected targets' Debian userlands into the cache (the
    setup a check does first); the x86 CPU models need none. Returns what was built."""
    stacks = tuple(t for t in get_targets(cfg.targets) if not t.isa)
    _, _, built = _setup(stacks, cfg.cache.resolve(), cfg.mirror)
    return built


def run_check(cfg: CheckConfig) -> tuple[list[Row], list[isa.IsaRow], Path]:
    """Run every selected target; write the reports; return the rows, the instruction-set rows
    and the Markdown path."""
    t_start = time.monotonic()
    targets = get_targets(cfg.targets)
    record = _recorded_dataset(_manifest_path(cfg.artifacts))  # the commonest mistake first
    x, y, source = _load_test_set(cfg.data, record, str(cfg.artifacts))
    cache = cfg.cache.resolve()
    work = cache / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    manifest, entries = snapshot_models(cfg.artifacts, work / "models")
    n_full, n_sub = min(cfg.images, len(x)), min(cfg.subset, cfg.images, len(x))
    counts = {e["key"]: n_full if e["key"] == FULL_SET_KEY else n_sub for e in entries}
    required = {e["key"]: len(x) if e["key"] == FULL_SET_KEY else min(MIN_SUBSET, len(x))
                for e in entries}
    images = work / "images.npy"
    np.save(images, x[:n_full])
    gate = _gate_set(work, x, manifest) if any(e["key"] in GATE_KEYS for e in entries) else None
    for e in entries:
        if e["key"] in GATE_KEYS and gate is not None:
            counts[e["key"]] = required[e["key"]] = len(gate[1])
    log(f"{len(entries)} files from {_manifest_path(cfg.artifacts)} (copied), {n_full:,} test "
        f"images ({n_sub:,} for the other files)")
    digits = record is None or record.get("kind") == "digits"
    photo_set = photos.write_photos(work / "photos", x, y) if digits else None
    plan = Plan(work, manifest, entries, counts, cfg.batch, images, photo_set,
                *(gate or (None, None, 0.0)))

    keras = _keras_probabilities(cfg.artifacts, manifest, x[:n_full], cache) \
        if any(t.isa for t in targets) else None
    roots, sites, built = _setup(targets, cache, cfg.mirror)
    t_setup = time.monotonic() - t_start
    host, host_envs, failures, host_photos = _host_runs(cfg, targets, plan)

    rows, isa_rows, target_info = [], [], {}
    with ThreadPoolExecutor(max_workers=cfg.jobs) as pool:  # qemu processes, one per target
        # the x86 models first: their int8 files on the full set under TCG's AVX emulation are
        # the longest runs, and the Pis pack around them
        futures = {t.key: pool.submit(run_target, t, roots.get(t.stack.name), sites, required,
                                      cache, plan)
                   for t in sorted(targets, key=lambda t: not t.isa)}
    for target in targets:
        rows_t, info = futures[target.key].result()
        target_info[target.key] = info
        if target.isa:  # judged below, with the host's rows, against Keras
            isa_rows += rows_t
            info.pop("photos")
            continue
        for row in rows_t:
            ref = host.get(row.backend, {}).get(row.key)
            if ref and not ref.get("error") and row.images and row.key in GATE_KEYS:
                _compare_gate_row(row, entries, plan, ref, tolerance(cfg, row.key))
            elif ref and not ref.get("error") and row.images:
                _compare_row(row, entries, work, ref, host[HOST_BACKENDS[ref["format"]]], y,
                             tolerance(cfg, row.key))
            elif row.images:
                row.failures.append(f"no host result for {row.key} on {row.backend} "
                                    "to compare with")
            rows.append(as_information(row) if target.informational else row)
        for backend, answer in info.pop("photos", {}).items():
            assert plan.photos is not None  # photo answers come only with photos
            rows.append(photos.compare_photos(target.key, backend, answer,
                                              host_photos.get(backend, {"error": "no host run"}),
                                              plan.photos))
    if keras is not None:
        isa_rows = compare_isa(targets, isa_rows, host, plan, keras, y, cfg)
    for target in targets:
        if not target.informational:
            failures += [f"{target.key} {r['backend']} {r['key']}: self-test failed: "
                         f"{r['summary']}" for r in target_info[target.key]["self_test"]
                         if not r["passed"]]
    for row in rows + isa_rows:
        if not row.ok:
            log(f"{row.target} {row.key}: FAIL {'; '.join(row.failures)}")

    summary = {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ok": not failures and all(r.ok for r in rows + isa_rows),
        "seconds_total": time.monotonic() - t_start, "seconds_setup": t_setup,
        "cache": f"built {', '.join(built) or 'nothing'}",
        "manifest": str(_manifest_path(cfg.artifacts).resolve()), "data": source,
        "host": host_envs[sys.executable], "host_references": host_envs,
        "config": {k: str(v) for k, v in asdict(cfg).items()}, "failures": failures,
        "host_cpu": isa.host_cpu(),
        "isa_float_min_agreement": tolerance(cfg, FULL_SET_KEY).float_min_agreement,
    }
    md, _ = write_reports(cfg.reports, summary, rows, target_info, isa_rows)
    return rows + [Row("host", f, "", 0, 0, failures=[f]) for f in failures], isa_rows, md


def self_test_rows(answers: dict[str, dict]) -> list[dict]:
    """One row per file each backend ran on the golden set (``self_test`` worker answers by
    backend); a backend whose self-test could not run at all is one failed row."""
    rows = []
    for backend, answer in answers.items():
        if not answer.get("ok"):
            rows.append({"backend": backend, "key": "(all)", "passed": False,
                         "summary": f"the self-test did not run: {answer.get('error')}"})
            continue
        rows += [dict(r, backend=backend) for r in answer["files"] if "not_run" not in r]
    return rows


def _keras_probabilities(artifacts: Path, manifest: Path, x: np.ndarray,
                         cache: Path) -> np.ndarray:
    """model.keras's probabilities on ``x`` (the host's TensorFlow, cached by sha256), refusing
    a model.keras the copied files were not exported from."""
    from common.keras_reference import keras_probabilities
    from mnist_edge.digest import sha256_file

    model = _manifest_path(artifacts).parent / MODEL_FILE
    if not model.is_file():
        raise PiCheckError(f"{model}: not found; the x86 targets compare every file with it "
                           "(run `make train export`, or choose --targets without x86-*)")
    sha = sha256_file(model)
    if exported_from(read_manifest(manifest)) != sha:
        raise PiCheckError(f"{manifest}: exported from a different {MODEL_FILE} than {model}; "
                           "run `make export`")
    log(f"Keras: {MODEL_FILE} on {len(x):,} test images (cached in {cache / 'keras'})")
    return keras_probabilities(model, sha, x, cache / "keras")


def compare_isa(targets, rows: list[isa.IsaRow], host: dict, plan: Plan, keras: np.ndarray,
                y: np.ndarray, cfg: CheckConfig) -> list[isa.IsaRow]:
    """The host's rows and each instruction-set target's, judged against Keras and an int8
    file's float file; the float file's answers come from the same CPU model where it ran on
    as many images, else from the host's run of it on the same backend."""
    host_rows = [isa.IsaRow(isa.HOST, k, b, jobs[k].get("images", 0), len(keras))
                 for k in CLASSIFIER_KEYS for b, jobs in host.items()
                 if b == HOST_BACKENDS[BACKENDS[b].format] and k in jobs]
    for row in host_rows:
        job = host[row.backend][row.key]
        if job.get("error"):
            row.failures.append(job["error"])
        else:
            row.ms_per_image = 1000 * job["seconds"] / job["images"]
    order = [isa.HOST] + [t.key for t in targets if t.isa]
    out = {(r.target, r.key, r.backend): plan.work / f"{r.target}.{r.key}.npz" for r in rows}
    out |= {(isa.HOST, r.key, r.backend): Path(host[r.backend][r.key]["out"])
            for r in host_rows if not r.failures}
    every = sorted(host_rows + rows, key=lambda r: (order.index(r.target),
                                                    CLASSIFIER_KEYS.index(r.key)))
    for row in every:
        path = out.get((row.target, row.key, row.backend))
        if row.unsupported or row.failures or path is None or not path.is_file():
            continue
        mine = load_outputs(path)
        row.float_key = isa.float_partner(row.key, plan.entries)
        float_labels = None
        if row.float_key:
            same = out.get((row.target, row.float_key, row.backend))
            here = load_outputs(same)["labels"] if same and same.is_file() else np.empty(0)
            if len(here) < row.images:  # the float file ran on a subset here: the host's answers
                row.notes.append(f"{row.float_key}'s answers from the host ({row.backend}): it "
                                 f"ran on {len(here):,} images on {row.target}")
                same = out.get((isa.HOST, row.float_key, row.backend))
                here = load_outputs(same)["labels"] if same else np.empty(0)
            float_labels = here if len(here) >= row.images else None
            if float_labels is None:
                row.failures.append(f"no answers of {row.float_key} on {row.images:,} images "
                                    "to compare with")
        isa.judge(row, mine["labels"], mine["probabilities"], keras, y, tolerance(cfg, row.key),
                  float_labels)
        ref = host.get(row.backend, {}).get(row.key, {})
        if row.target != isa.HOST and ref.get("out"):
            theirs = load_outputs(Path(ref["out"]))["labels"][:row.images]
            row.host_agreement = float(np.mean(mine["labels"][:row.images] == theirs))
    return every


def _setup(targets, cache: Path, mirror: str):
    """Host tools, roots, runtime and backend installs; returns roots, sites and what was built."""
    every = list({t.stack.name: t.stack for t in targets}.values())
    built = ["host tools (apt)"] if rootfs.ensure_host_tools(every) else []
    for host_stack in (s for s in every if isinstance(s, HostStack)):
        if not (REPO / host_stack.python).is_file():
            raise PiCheckError(f"{REPO / host_stack.python}: no device venv for the "
                               f"{host_stack.name} targets; run `make runtime-venvs`")
    stacks = [s for s in every if isinstance(s, Stack)]
    roots: dict[str, Path] = {}
    sites: dict = {}
    if not stacks:
        return roots, sites, built
    wheel = packages.build_runtime_wheel(REPO / "runtime", cache / "runtime-wheel")
    log(f"built {wheel.name}")
    pins = packages.host_pins(REPO / "requirements.txt")
    for stack in stacks:
        root, new = rootfs.ensure_root(stack, cache, mirror)
        built += [f"root-{stack.name}"] if new else []
        roots[stack.name] = root
        runtime_site = packages.install_runtime(root, wheel)
        # Debian's python3-* packages (numpy, Pillow on armhf) count towards the install
        extra = packages.folder_size(root / "usr/lib/python3/dist-packages") \
            if stack.debian_python else 0
        for inst in stack.backends:
            reqs = packages.requirements_for(inst, stack, REPO / "runtime", pins)
            site, new = packages.ensure_backend(stack, inst, root, reqs, cache)
            built += [f"{stack.name}/{inst.backend}"] if new else []
            size = packages.folder_size(runtime_site) + packages.folder_size(site) + extra
            sites[(stack.name, inst.backend)] = (runtime_site, site, size)
    return roots, sites, built


def _host_runs(cfg: CheckConfig, targets, plan: Plan) -> tuple[dict, dict, list[str], dict]:
    """Every backend the targets use, run on the host on the same files and images.

    Returns {backend: {key: job result}}, {python: environment}, host failures and
    {backend: photo-path answers} for the TFLite backends.
    """
    pythons = {b: sys.executable for b in HOST_BACKENDS.values()}
    pythons["tflite-runtime"] = str(cfg.host_tflite_python)
    needed = set(HOST_BACKENDS.values()) | {i.backend for t in targets for i in t.stack.backends}
    by_python: dict[str, list[str]] = {}
    for backend in sorted(needed):
        by_python.setdefault(pythons[backend], []).append(backend)
    host, envs, failures, photo_answers = {}, {}, [], {}
    counts = host_counts(targets, plan)
    for python, backends in by_python.items():
        if not Path(python).is_file():
            raise PiCheckError(f"{python}: no host Python for {', '.join(backends)}; run "
                               "`make runtime-venvs` or pass --host-tflite-python")
        jobs = [j for b in backends for j in plan_jobs(plan, f"host-{b}", _runs_on(b), counts)]
        log(f"host: {', '.join(backends)} on {len(jobs)} files ({python})")
        with Worker(python, timeout=JOB_TIMEOUT_S) as worker:
            envs[python], results = _run_jobs(worker, jobs, f"the host run with {python}")
            for b in backends:
                if BACKENDS[b].format == "tflite" and plan.photos is not None:
                    photo_answers[b] = worker.call(photos.job(plan.manifest, b, plan.photos))
        for job in results:
            host.setdefault(job["backend"], {})[job["key"]] = job
            if job.get("error"):
                failures.append(f"host {job['backend']} {job['key']}: {job['error']}")
    return host, envs, failures, photo_answers


def _runs_on(backend: str):
    fmt = BACKENDS[backend].format
    return lambda e: backend if e["format"] == fmt else None


def _compare_row(row: Row, entries, work: Path, ref: dict, default: dict, y,
                 tol: Tolerance) -> None:
    """Compare one device row with the host run of the same backend (and note the default's)."""
    entry = next(e for e in entries if e["key"] == row.key)
    device = load_outputs(work / f"{row.target}.{row.key}.npz")
    compare(row, entry, device, load_outputs(Path(ref["out"])), y, tol)
    row.host_ms_per_image = 1000 * ref["seconds"] / ref["images"]
    if ref is not default.get(row.key) and default.get(row.key, {}).get("out"):
        other = load_outputs(Path(default[row.key]["out"]))["labels"][:row.images]
        same = int((device["labels"][:row.images] == other).sum())
        why = "" if same == row.images else (" (an interpreter-version difference: the host's "
                                             f"{row.backend} gives the same answers)")
        row.notes.append(f"vs the host's {default[row.key]['backend']}: same digit on {same:,} of "
                         f"{row.images:,} images{why}")


def _gate_set(work: Path, x: np.ndarray, manifest: Path) -> tuple[Path, np.ndarray, float]:
    """The gate's files' images (.npy: test digits, then held-out non-digits), their truth and
    the manifest's threshold."""
    from common import nondigits

    others, _ = nondigits.generate(GATE_NONDIGITS, GATE_SEED, nondigits.HELDOUT, digits=x)
    path = work / "gate-images.npy"
    np.save(path, np.concatenate([x[:GATE_DIGITS], others]))
    labels = np.r_[np.ones(min(GATE_DIGITS, len(x)), np.int64), np.zeros(len(others), np.int64)]
    return path, labels, float(read_manifest(manifest).data["gate"]["threshold"])


def _compare_gate_row(row: Row, entries, plan: Plan, ref: dict, tol: Tolerance) -> None:
    """Compare a gate file's device run with the host run of the same backend."""
    entry = next(e for e in entries if e["key"] == row.key)
    with np.load(plan.work / f"{row.target}.{row.key}.npz") as device, \
            np.load(Path(ref["out"])) as host:
        compare_gate(row, entry, device["digit_scores"], host["digit_scores"], plan.gate_labels,
                     plan.threshold, tol)
    row.host_ms_per_image = 1000 * ref["seconds"] / ref["images"]


def _target_required(target: Target, plan: Plan, required: dict, counts: dict) -> dict:
    """The images each of ``target``'s runs must reach to pass."""
    if target.informational:
        return counts
    if target.isa:  # an int8 file on the full set, like the full-set file
        precision = {e["key"]: e.get("precision") for e in plan.entries}
        return {k: required[FULL_SET_KEY] if precision.get(k) == "int8" else required[k]
                for k in counts}
    return required


def _launch(target: Target, backend: str, root: Path | None, stack_root: Path | None, sites
            ) -> tuple[list[str], dict, Path, Path | None, int | None]:
    """(command, environment, runtime folder, backend folder, install bytes) of one backend's
    worker on ``target``."""
    qemu = rootfs.emulator(target.stack)
    base = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1"}
    if isinstance(target.stack, HostStack):  # the host's venv, this checkout's runtime
        runtime_site = REPO / "runtime/src"
        cmd = [qemu, "-cpu", target.cpu, REPO / target.stack.python, WORKER_FILE]
        return [str(c) for c in cmd], base | {"PYTHONPATH": str(runtime_site)}, runtime_site, \
            None, None
    assert root is not None and stack_root is not None
    runtime_site, site, size = sites[(target.stack.name, backend)]
    runtime_site, site = (root / p.relative_to(stack_root) for p in (runtime_site, site))
    # Host paths: qemu-arm 7.2 does not apply -L to statx, so /opt/... would not import on armhf.
    cmd = [qemu, "-L", root, "-cpu", target.cpu, root / "usr/bin/python3.11", WORKER_FILE]
    return [str(c) for c in cmd], base | {"PYTHONPATH": f"{runtime_site}:{site}"}, runtime_site, \
        site, size


def _new_row(target: Target, backend: str, required: dict, size: int | None, key: str,
             images: int, problems: list[str]) -> Row | isa.IsaRow:
    if target.isa:
        return isa.IsaRow(target.key, key, backend, images, required[key], failures=list(problems))
    return Row(target.key, key, backend, images, required[key], install_bytes=size,
               failures=list(problems))


def run_target(target: Target, stack_root: Path | None, sites, required, cache: Path,
                plan: Plan) -> tuple[list, dict]:
    """Run one emulated CPU, one process per backend; returns rows (not yet compared: Row, or
    isa.IsaRow for an instruction-set target) and facts."""
    root = (rootfs.target_root(stack_root, target.key, target.cpuinfo, cache)
            if stack_root is not None else None)
    counts = target_counts(target, plan)
    required = _target_required(target, plan, required, counts)
    rows: list = []
    envs, t0 = {}, time.monotonic()
    photo_answers: dict[str, dict] = {}
    self_tests: dict[str, dict] = {}
    for inst in target.stack.backends:
        jobs = plan_jobs(plan, target.key, _runs_on(inst.backend), counts)
        if not jobs:
            continue
        cmd, env, runtime_site, site, size = _launch(target, inst.backend, root, stack_root, sites)
        log(f"{target.key}: {inst.backend} on {', '.join(j['key'] for j in jobs)} "
            f"under {Path(cmd[0]).name} -cpu {target.cpu}")
        row_of = partial(_new_row, target, inst.backend, required, size)
        try:
            with Worker(cmd=cmd, env=env, timeout=JOB_TIMEOUT_S) as worker:
                env_info, results = _run_jobs(worker, jobs,
                                              f"{target.key} {inst.backend} under qemu")
                if (BACKENDS[inst.backend].format == "tflite" and not target.only
                        and plan.photos is not None):
                    photo_answers[inst.backend] = worker.call(
                        photos.job(plan.manifest, inst.backend, plan.photos))
                self_tests[inst.backend] = worker.call(
                    {"job": "self_test", "manifest": str(plan.manifest), "backend": inst.backend})
        except PiCheckError as exc:  # a crash fails this backend's rows; the other runs go on
            rows += [isa.unsupported(row_of(j["key"], 0, []), str(exc)) if target.isa
                     else row_of(j["key"], 0, [str(exc)]) for j in jobs]
            continue
        envs[inst.backend] = env_info
        problems = []
        if site is not None and (found := packages.tensorflow_in(runtime_site, site)):
            problems.append(f"TensorFlow/Keras installed on the device: {', '.join(found)}")
        if env_info["tensorflow_importable"] or env_info["tensorflow_imported"]:
            problems.append("tensorflow is importable on the device")
        if not env_info["mnist_edge"].startswith(str(runtime_site)):
            problems.append(f"mnist_edge imported from {env_info['mnist_edge']}, "
                            f"not {runtime_site}")
        if seen := sorted(set(target.lacks) & set(env_info.get("cpu_features", ()))):
            problems.append(f"numpy sees {', '.join(seen)}: the worker does not run on the "
                            f"{target.cpu} model")
        for job in results:
            row = row_of(job["key"], job.get("images", 0), problems)
            if job.get("error") and target.isa:  # the backend refuses this CPU model
                isa.unsupported(row, job["error"])
            elif job.get("error"):
                row.failures.append(job["error"])
            else:
                row.ms_per_image = 1000 * job["seconds"] / job["images"]
                if job["backend"] != inst.backend:
                    row.failures.append(f"ran on backend {job['backend']}, expected {inst.backend}")
            rows.append(row)
    env_any = next(iter(envs.values()), {})
    info = {"title": target.title, "cpu": target.cpu, "cpu_note": target.cpu_note,
            "informational": target.informational, "isa": target.isa,
            "seconds": time.monotonic() - t0, "photos": photo_answers,
            "self_test": self_test_rows(self_tests),
            "environment": dict(env_any, versions={k: v for e in envs.values()
                                                   for k, v in e["versions"].items() if v},
                                tensorflow_importable=any(e["tensorflow_importable"]
                                                          for e in envs.values()))}
    return rows, info
