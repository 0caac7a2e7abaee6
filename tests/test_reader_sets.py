"""The number reader's evaluation sets (common/photos.py) hold what they claim.

Each property is measured again here, independently of the code that made the set: the splits
are kept apart (every array access is recorded), the truth strings are the source labels in
reading order, touching/broken/thin tags agree with the ink, the proportions the report relies
on are met, and the same seed gives the same photos. The scoring helpers and the command line
get a few checks too.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common import photos as sets
from common.photo_score import compare, edit_distance, matched

ROOT = Path(__file__).resolve().parents[1]
SEED = 1234
N_NUMBERS = 200   # enough for the proportions within a few points; ~7 s to make
N_SINGLES = 200


@pytest.fixture(scope="module")
def mnist():
    """MNIST, or a skip when it cannot be loaded."""
    from common.data import DataError, load_mnist

    try:
        return load_mnist()
    except DataError as exc:
        pytest.skip(f"no MNIST: {exc}")


@pytest.fixture(scope="module")
def test_digits(mnist) -> sets.Digits:
    return sets.split_digits(mnist, "test")


@pytest.fixture(scope="module")
def numbers(test_digits) -> list[sets.Sample]:
    return list(sets.numbers(test_digits, SEED, N_NUMBERS))


@pytest.fixture(scope="module")
def singles(test_digits) -> list[sets.Sample]:
    return list(sets.singles(test_digits, SEED, N_SINGLES))


# ------------------------------------------------------------------ independent measurements

def _flood_pieces(mask: np.ndarray, min_share: float = sets.MIN_PIECE) -> int:
    """Connected pieces (8-neighbour) by flood fill, specks under min_share left out."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    sizes = []
    for y, x in zip(*np.nonzero(mask), strict=True):
        if seen[y, x]:
            continue
        stack, size = [(y, x)], 0
        seen[y, x] = True
        while stack:
            a, b = stack.pop()
            size += 1
            for c in range(max(0, a - 1), min(h, a + 2)):
                for d in range(max(0, b - 1), min(w, b + 2)):
                    if mask[c, d] and not seen[c, d]:
                        seen[c, d] = True
                        stack.append((c, d))
        sizes.append(size)
    floor = max(2.0, min_share * sum(sizes))
    return sum(s >= floor for s in sizes)


def _canvas(g: sets.Glyph, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    out[g.box[1]:g.box[3], g.box[0]:g.box[2]] = g.mask
    return out


def _adjacent(a: np.ndarray, b: np.ndarray) -> bool:
    """True when some pixel of a is one of b's pixels or one of their 8 neighbours."""
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.zeros_like(a)
            ys = slice(max(0, dy), a.shape[0] + min(0, dy))
            yd = slice(max(0, -dy), a.shape[0] + min(0, -dy))
            xs = slice(max(0, dx), a.shape[1] + min(0, dx))
            xd = slice(max(0, -dx), a.shape[1] + min(0, -dx))
            shifted[yd, xd] = a[ys, xs]
            if (shifted & b).any():
                return True
    return False


def _erosion_survival(mask: np.ndarray) -> float:
    """Share of the mask left after one 4-neighbour erosion: ~0 for 1-2 px lines."""
    m = np.pad(mask, 1)
    kept = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return float(kept.sum()) / max(1, int(mask.sum()))


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) if image.ndim == 2 else image.astype(np.float32) @ np.array(
        [0.299, 0.587, 0.114], dtype=np.float32)


# ------------------------------------------------------------------ splits and determinism

class _Spy(np.ndarray):
    """An array that records which indices are read (anything but whole indices as is)."""

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            self.seen.add(int(key))
        elif isinstance(key, np.ndarray) and key.dtype.kind in "iu":
            self.seen.update(int(k) for k in key.ravel())
        else:
            self.seen.add(repr(key)[:60])
        return np.asarray(self)[key]


def _spy(a: np.ndarray) -> _Spy:
    s = a.view(_Spy)
    s.seen = set()
    return s


@pytest.mark.parametrize("split", sets.SPLITS)
def test_a_split_reads_only_its_own_digits(mnist, split):
    spied = replace(mnist, **{k: _spy(getattr(mnist, k))
                              for k in ("x_train", "y_train", "x_test", "y_test")})
    digits = sets.split_digits(spied, split)
    made = [*sets.numbers(digits, SEED, 15), *sets.singles(digits, SEED, 15)]
    other = "train" if split == "test" else "test"
    assert not getattr(spied, f"x_{other}").seen and not getattr(spied, f"y_{other}").seen
    used = {g.source for s in made for g in s.glyphs}
    assert getattr(spied, f"x_{split}").seen == used
    assert all(s.split == split for s in made)


@pytest.mark.parametrize("split", sets.SPLITS)
def test_every_digit_drawn_is_an_image_of_its_split_and_not_of_the_other(mnist, split):
    digits = sets.split_digits(mnist, split)
    other = mnist.x_train if split == "test" else mnist.x_test
    other_hashes = {hashlib.sha1(x.tobytes()).digest() for x in other}
    own = mnist.x_test if split == "test" else mnist.x_train
    made = [*sets.numbers(digits, SEED, 30), *sets.singles(digits, SEED, 30)]
    for s in made:
        for g in s.glyphs:
            assert np.array_equal(digits.x[g.source], own[g.source])
            assert hashlib.sha1(own[g.source].tobytes()).digest() not in other_hashes


def test_an_unknown_split_is_refused(mnist):
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        sets.split_digits(mnist, "validation")


def test_the_same_seed_makes_the_same_photos_whatever_the_set_size(test_digits):
    a = list(sets.numbers(test_digits, SEED, 4))
    b = [sets.number_sample(test_digits, SEED, i) for i in range(4)]
    c = list(sets.numbers(test_digits, SEED + 1, 4))
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image) and x.truth == y.truth and x.tags == y.tags
        assert x.jpeg == y.jpeg
    assert sum(np.array_equal(x.image, z.image) if x.image.shape == z.image.shape else False
               for x, z in zip(a, c, strict=True)) == 0
    s1, s2 = sets.single_sample(test_digits, SEED, 7), sets.single_sample(test_digits, SEED, 7)
    assert np.array_equal(s1.image, s2.image) and s1.truth == s2.truth


# ------------------------------------------------------------------ truth and tags vs the ink

def test_truth_is_the_source_labels_in_reading_order(numbers, test_digits):
    for s in numbers:
        lines = sorted({g.line for g in s.glyphs})
        want = []
        for line in lines:
            row = sorted((g for g in s.glyphs if g.line == line),
                         key=lambda g: (g.box[0] + g.box[2]) / 2)
            want.append("".join(str(int(test_digits.y[g.source])) for g in row))
            assert [g.label for g in row] == [int(test_digits.y[g.source]) for g in row]
        assert s.truth == "\n".join(want), s.index
        if len(lines) == 2:  # the top line ends above the bottom line
            assert max(g.box[3] for g in s.glyphs if g.line == 0) < min(
                g.box[1] for g in s.glyphs if g.line == 1)
        assert s.tags["lines"] == str(len(lines)) == str(s.truth.count("\n") + 1)
        assert s.tags["digits"] == str(len(s.glyphs)) == str(len(s.truth.replace("\n", "")))


def test_touching_is_tagged_exactly_when_the_ink_of_neighbours_touches(numbers):
    for s in numbers:
        shape = s.image.shape[:2]
        canvases = [_canvas(g, shape) for g in s.glyphs]
        touching = [_adjacent(canvases[i], canvases[j])
                    for i in range(len(s.glyphs)) for j in range(i + 1, len(s.glyphs))
                    if s.glyphs[i].line == s.glyphs[j].line]
        assert (s.tags["touching"] == "yes") == any(touching), s.index
        assert s.params["touching_pairs"] == sum(touching), s.index


def test_broken_is_tagged_exactly_when_a_digit_falls_into_more_pieces(numbers, singles):
    for s in numbers[:80] + singles[:80]:
        for g in s.glyphs:
            assert _flood_pieces(g.mask) == g.pieces, (s.set, s.index)
        cut = [g for g in s.glyphs if g.pieces > g.clean_pieces]
        assert (s.tags["broken"] == "yes") == bool(cut), (s.set, s.index)
        assert all(g.pieces >= 2 for g in cut)


def test_thin_strokes_are_one_or_two_pixels_and_markers_are_not(numbers, singles):
    for s in numbers + singles:
        for g in s.glyphs:
            assert g.mask.shape == g.ink.shape
            assert not (g.mask & (g.ink == 0)).any()  # the shape is drawn
            if s.tags["thin"] == "yes":
                assert _erosion_survival(g.mask) < 0.4, (s.set, s.index)
    markers = [_erosion_survival(g.mask) for s in numbers if s.tags["stroke"] == "marker"
               for g in s.glyphs]
    assert np.median(markers) > 0.5


def test_the_photo_shows_the_ink_in_the_tagged_polarity(numbers, singles):
    for s in numbers[:60] + singles[:60]:
        luma = _luma(s.image)
        paper = np.zeros(luma.shape, dtype=bool)   # around the digits, off their ink
        strong = np.zeros(luma.shape, dtype=bool)  # the darkest-drawn ink
        for g in s.glyphs:
            left, top, right, bottom = g.box
            paper[max(0, top - 8):bottom + 8, max(0, left - 8):right + 8] = True
        for g in s.glyphs:
            left, top, right, bottom = g.box
            paper[top:bottom, left:right] &= g.ink == 0
            strong[top:bottom, left:right] |= g.ink > 160
        if strong.sum() < 20:
            continue
        diff = float(luma[paper].mean() - luma[strong].mean())
        if s.tags["polarity"] == "dark on light":
            assert diff > 15, (s.set, s.index, diff)
        else:
            assert diff < -15, (s.set, s.index, diff)


# ------------------------------------------------------------------ proportions

def _share(samples: list[sets.Sample], test) -> float:
    return sum(bool(test(s)) for s in samples) / len(samples)


def test_numbers_have_the_required_mix(numbers):
    assert _share(numbers, lambda s: s.tags["touching"] == "yes") >= 0.30
    assert _share(numbers, lambda s: "yes" in (s.tags["thin"], s.tags["broken"])) >= 0.20
    assert _share(numbers, lambda s: s.tags["thin"] == "yes") >= 0.10
    assert _share(numbers, lambda s: s.tags["broken"] == "yes") >= 0.10
    assert _share(numbers, lambda s: s.tags["pressure"] == "yes") >= 0.05
    counts = [len(s.truth.replace("\n", "")) for s in numbers if s.tags["lines"] == "1"]
    assert set(counts) == {2, 3, 4, 5, 6}
    assert min(counts.count(k) for k in range(2, 7)) >= 0.1 * len(counts)
    assert all(2 <= len(s.glyphs) <= 6 for s in numbers)
    assert 0 < _share(numbers, lambda s: s.tags["lines"] == "2") <= 0.1
    slants = [float(s.params["slant_deg"]) for s in numbers]
    assert max(map(abs, slants)) <= sets.MAX_SLANT and min(slants) < -10 and max(slants) > 10
    ratios = [max(g.box[3] - g.box[1] for g in s.glyphs) / min(g.box[3] - g.box[1]
                                                               for g in s.glyphs)
              for s in numbers]
    assert max(ratios) <= 2.0
    assert sum(r >= 1.3 for r in ratios) >= 0.15 * len(numbers)
    for s in numbers:  # baselines jitter, but a line's digits overlap vertically
        for line in {g.line for g in s.glyphs}:
            row = [g for g in s.glyphs if g.line == line]
            assert max(g.box[1] for g in row) < min(g.box[3] for g in row), s.index


def test_numbers_are_photos_of_realistic_size_and_make(numbers):
    frames = [s.image.shape[:2] for s in numbers]
    assert _share(numbers, lambda s: s.image.shape[:2] == (480, 640)) >= 0.5
    assert len(set(frames)) >= 5
    assert 0.05 <= _share(numbers, lambda s: s.tags["polarity"] == "light on dark") <= 0.3
    assert {s.tags["background"] for s in numbers} == set(sets.LIGHTING)
    quality = [s.params["jpeg_quality"] for s in numbers if s.jpeg is not None]
    assert len(quality) >= 0.7 * len(numbers) and min(quality) < 50 and max(quality) > 85
    for s in numbers:
        if s.jpeg is not None:  # the pixels are the JPEG's
            with Image.open(io.BytesIO(s.jpeg)) as img:
                assert img.format == "JPEG" and np.array_equal(np.asarray(img), s.image)
        h, w = s.image.shape[:2]
        left, top = min(g.box[0] for g in s.glyphs), min(g.box[1] for g in s.glyphs)
        right, bottom = max(g.box[2] for g in s.glyphs), max(g.box[3] for g in s.glyphs)
        assert left >= 0 and top >= 0 and right <= w and bottom <= h, s.index
        assert 0.1 * w <= right - left <= 0.95 * w, s.index  # a realistic share of the frame
        assert bottom - top <= 0.95 * h


def test_single_digits_are_all_thin_or_broken(singles):
    for s in singles:
        assert len(s.glyphs) == 1 and s.truth == str(s.glyphs[0].label)
        assert "yes" in (s.tags["thin"], s.tags["broken"]), s.index
    assert _share(singles, lambda s: s.tags["thin"] == "yes") >= 0.6
    assert _share(singles, lambda s: s.tags["broken"] == "yes") >= 0.3
    assert _share(singles, lambda s: s.tags["pressure"] == "yes") >= 0.2
    assert {s.tags["stroke"] for s in singles} == {"fine pen", "pencil", "pen", "marker"}


def test_forced_frame_and_length(test_digits):
    s = sets.number_sample(test_digits, SEED, 10**6, frame=(640, 480), n_digits=4)
    assert s.image.shape[:2] == (480, 640) and len(s.truth) == 4 and "\n" not in s.truth
    d = sets.single_sample(test_digits, SEED, 10**6, frame=(640, 480))
    assert d.image.shape[:2] == (480, 640)


# ------------------------------------------------------------------ helpers

def test_count_pieces_agrees_with_a_flood_fill():
    rng = np.random.default_rng(0)
    for _ in range(200):
        mask = rng.random((int(rng.integers(1, 25)), int(rng.integers(1, 25)))) < rng.uniform(
            0.1, 0.6)
        assert sets.count_pieces(mask) == _flood_pieces(mask)


def test_skeleton_of_a_thick_bar_is_one_connected_line():
    mask = np.zeros((40, 60), dtype=bool)
    mask[15:25, 5:55] = True
    mask[5:35, 28:36] = True   # a cross
    skel = sets.skeleton(mask)
    assert skel.any() and not (skel & ~mask).any()
    assert _erosion_survival(skel) < 0.05 and sets.count_pieces(skel) == 1  # but the junction


def test_scoring_aligns_readings_with_the_truth():
    assert edit_distance("4071", "4071") == 0 and edit_distance("4071", "471") == 1
    assert edit_distance("12", "") == 2 and edit_distance("", "5") == 1
    assert matched("4071", "40071") == [True, False, True, True, True] or matched(
        "4071", "40071") == [False, True, True, True, True]
    assert matched("4071", "4971") == [True, False, True, True]
    c = compare("12\n34", "1234")
    assert not c["exact"] and c["same_length"] and c["right_in_place"] == 4
    assert not c["lines_right"]
    c = compare("123", "13")
    assert c["length_error"] == -1 and c["right_in_place"] is None and c["distance"] == 1
    c = compare("123", None)
    assert not c["exact"] and c["distance"] == 3


def test_gate_refusals_are_counted_overall_and_per_kind():
    from checks.reader.gate import by_kind, targets

    refused = np.array([1, 1, 0, 1, 0, 0, 1, 1], bool)
    kinds = ["letters", "letters", "letters", "scenes", "scenes", "pairs", "pairs", "pairs"]

    got = by_kind(refused, kinds)

    assert got["n"] == 8 and got["refusal_rate"] == 5 / 8
    assert got["by_kind"] == {"letters": {"n": 3, "refusal_rate": round(2 / 3, 6)},
                              "scenes": {"n": 2, "refusal_rate": 0.5},
                              "pairs": {"n": 3, "refusal_rate": round(2 / 3, 6)}}
    gate = {"nondigits": {"crops": {"refusal_rate": 0.95}, "photos": {"refusal_rate": 0.85}},
            "mnist_test": {"false_refusal_rate": 0.01}}
    met = [t["met"] for t in targets(gate, {"gate_false_refusal_rate": 0.03})]
    assert met == [True, False, True, False]  # >= 90%, >= 90%, <= 1% (at the goal), <= 2%


# ------------------------------------------------------------------ the command line

def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "checks.reader", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_help_explains_the_flags_with_defaults():
    done = _cli("--help")
    assert done.returncode == 0
    for flag in ("--split", "--seed", "--n-numbers", "--n-singles", "--save-sets", "--repeats"):
        assert flag in done.stdout
    text = " ".join(done.stdout.split())
    assert "(default: test)" in text and "(default: 1000)" in text and "(default: 1234)" in text


def test_a_bad_flag_is_one_line_not_a_traceback():
    done = _cli("--split", "validation")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "invalid choice" in done.stderr


def test_save_sets_writes_photos_and_truth(mnist, test_digits, tmp_path):
    done = _cli("--save-sets", str(tmp_path / "sets"), "--n-numbers", "3", "--n-singles", "2")
    assert done.returncode == 0, done.stderr
    truth = json.loads((tmp_path / "sets" / "truth.json").read_text())
    assert truth["split"] == "test" and truth["seed"] == SEED
    assert len(truth["numbers"]) == 3 and len(truth["singles"]) == 2
    for entry in truth["numbers"]:
        s = sets.number_sample(test_digits, SEED, entry["index"])
        with Image.open(tmp_path / "sets" / entry["file"]) as img:
            assert np.array_equal(np.asarray(img), s.image)
        assert entry["truth"] == s.truth
        assert [d["box"] for d in entry["digits"]] == [list(g.box) for g in s.glyphs]


def test_the_report_runs_end_to_end(test_artifacts, tmp_path):
    from checks.reader.run import EXACT_GOAL
    from common.floors import FLOORS, lookup
    from common.nondigits import KINDS

    done = _cli("--artifacts", str(test_artifacts), "--out", str(tmp_path), "--n-numbers", "6",
                "--n-singles", "6", "--repeats", "2", "--failures", "3", "--gate-nondigits", "20")
    data = json.loads((tmp_path / "reader.json").read_text())
    # every floor's figure is in the report, and each one broken is named, with exit status 1
    for floor in FLOORS["reader"]:
        if floor.only_with is not None and lookup(data, floor.only_with) is not True:
            assert floor.figure not in done.stderr  # a part not measured: its floors are not
            continue
        value = lookup(data, floor.figure)
        assert isinstance(value, (int, float)), floor.figure
        broken = value > floor.limit if floor.at_most else value < floor.limit
        assert (f"FLOOR {floor.figure} = " in done.stderr) == broken, (floor, done.stderr)
    assert done.returncode == (1 if "FLOOR" in done.stderr else 0), done.stderr
    assert "error:" not in done.stderr and "Traceback" not in done.stderr
    assert data["split"] == "test" and data["seed"] == SEED and data["n_numbers"] == 6
    assert data["model"]["file"].endswith(".tflite") and "checks.reader" in data["command"]
    assert data["singles"]["n"] == 6
    assert [t["target"] for t in data["targets"]][:1] == ["numbers read exactly"]
    md = (tmp_path / "reader.md").read_text()
    assert "## Targets" in md and f">= {EXACT_GOAL:.0%}" in md
    if data["reader"]:
        assert data["numbers"]["n"] == 6 and (tmp_path / "reader_failures.png").is_file()
    gate = data["gate"]
    if not gate["present"]:
        assert f"Not measured: {gate['why']}; the gate's floors are not" in md
        return
    assert gate["numbers"]["n"] == 6 and gate["nondigits"]["crops"]["n"] == 20
    assert set(gate["nondigits"]["crops"]["by_kind"]) <= set(KINDS)
    assert [t["target"] for t in gate["targets"]] == [
        "non-digits refused (held-out crops)", "non-digits refused (held-out photo files)",
        "MNIST test digits wrongly refused", "digit photos wrongly refused"]
    assert "## \"No digit\" gate" in md
