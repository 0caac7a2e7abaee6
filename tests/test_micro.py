"""The microcontroller package of the int8 classifier: C++ that compiles and holds the int8 file
byte for byte, registers exactly the operators the file uses, an arena TFLM runs with (and not
with less), and TFLM answering like ai-edge-litert on MNIST test images."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from common.artifacts import MANIFEST_FILE, MICRO_HEADER, MICRO_SOURCE
from mnist_edge.digest import sha256_file

IMAGES = 1000  # test images the package is verified on here (the export uses all 10,000)
# tflite::MicroMutableOpResolver's methods and the builtin operator each registers, copied from
# tflite-micro's tensorflow/lite/micro/micro_mutable_op_resolver.h
TFLM_METHODS = {
    "AddAdd": "ADD", "AddAveragePool2D": "AVERAGE_POOL_2D", "AddConv2D": "CONV_2D",
    "AddDepthwiseConv2D": "DEPTHWISE_CONV_2D", "AddDequantize": "DEQUANTIZE",
    "AddFullyConnected": "FULLY_CONNECTED", "AddMaxPool2D": "MAX_POOL_2D", "AddMean": "MEAN",
    "AddMul": "MUL", "AddPack": "PACK", "AddPad": "PAD", "AddQuantize": "QUANTIZE",
    "AddRelu": "RELU", "AddReshape": "RESHAPE", "AddShape": "SHAPE", "AddSoftmax": "SOFTMAX",
    "AddSpaceToDepth": "SPACE_TO_DEPTH", "AddStridedSlice": "STRIDED_SLICE",
    "AddTranspose": "TRANSPOSE",
}
DRIVER = """
#include <stdio.h>
#include "model_int8_micro.h"

enum Status { kOk = 0, kFailed = 1 };
struct Recorder {
  int count = 0;
  Status Add(const char* op) { printf("op %s\\n", op); ++count; return kOk; }
%METHODS%
};

int main(int, char** argv) {
  Recorder resolver;
  if (mnist_micro::AddOps(resolver) != kOk) return 1;
  printf("count %d %d\\n", resolver.count, mnist_micro::kOpCount);
  printf("misaligned %d\\n", (int)((unsigned long)mnist_micro::g_model % 16));
  for (int p = 0; p < 256; ++p) printf("pixel %d\\n", mnist_micro::QuantizePixel(p));
  FILE* out = fopen(argv[1], "wb");
  fwrite(mnist_micro::g_model, 1, mnist_micro::g_model_len, out);
  return fclose(out);
}
"""


@pytest.fixture(scope="module")
def tflm():
    from export import micro_export

    runtime = micro_export.import_tflm()
    if runtime is None:
        pytest.skip(f"tflite-micro is not installed: {micro_export.INSTALL}")
    return runtime


@pytest.fixture(scope="module")
def mnist():
    from common.data import DataError, load_mnist

    try:
        return load_mnist(None)
    except DataError as exc:
        pytest.skip(f"no MNIST: {exc}")


@pytest.fixture(scope="module")
def package(tmp_path_factory, test_artifacts, tflm, mnist):
    """The micro package made from the test export's model_int8.tflite: (folder, int8 bytes,
    verification, manifest section, log lines)."""
    from export import micro_export

    folder = tmp_path_factory.mktemp("micro")
    shutil.copy(test_artifacts / "model_int8.tflite", folder)
    lines: list[str] = []
    result, section = micro_export.export(folder, mnist.x_test[:IMAGES], mnist.y_test[:IMAGES],
                                          lines.append)
    return folder, (folder / "model_int8.tflite").read_bytes(), result, section, lines


def _litert_ops(model: bytes) -> set[str]:
    from ai_edge_litert.interpreter import Interpreter

    return {op["op_name"] for op in Interpreter(model_content=model)._get_ops_details()}


def _constant(header: str, name: str) -> float:
    found = re.search(rf"constexpr (?:int|float) {name} = ([-0-9.e]+)f?;", header)
    assert found, f"{MICRO_HEADER} lacks {name}"
    return float(found[1])


def test_source_holds_the_int8_file_byte_for_byte(package):
    folder, model, result, section, _ = package
    assert result.passed and section is not None, result.failure
    text = (folder / MICRO_SOURCE).read_text()
    array = text[text.index("g_model[] = {"):text.index("};")]
    assert bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", array)) == model
    assert f"g_model_len = {len(model)};" in text
    listed = {f["path"]: f for f in section["files"]}
    for name in (MICRO_SOURCE, MICRO_HEADER):
        assert listed[name]["sha256"] == sha256_file(folder / name)
        assert listed[name]["size"] == (folder / name).stat().st_size


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_cpp_compiles_and_the_header_registers_the_files_operators(package, tmp_path):
    folder, model, _, _, _ = package
    methods = "\n".join(f'  Status {m}() {{ return Add("{op}"); }}'
                        for m, op in TFLM_METHODS.items())
    (tmp_path / "driver.cpp").write_text(DRIVER.replace("%METHODS%", methods))
    flags = ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{folder}"]
    subprocess.run([*flags, "-c", str(folder / MICRO_SOURCE), "-o", str(tmp_path / "model.o")],
                   check=True, capture_output=True)
    build = subprocess.run([*flags, str(tmp_path / "driver.cpp"), str(tmp_path / "model.o"),
                            "-o", str(tmp_path / "driver")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([str(tmp_path / "driver"), str(tmp_path / "out.bin")],
                         capture_output=True, text=True, check=True)
    lines = run.stdout.splitlines()
    ops = [line.split()[1] for line in lines if line.startswith("op ")]
    assert set(ops) == _litert_ops(model) and len(ops) == len(set(ops))
    assert f"count {len(ops)} {len(ops)}" in lines
    assert "misaligned 0" in lines
    assert (tmp_path / "out.bin").read_bytes() == model
    # the header's pixel quantization is the one the input tensor's parameters give
    from ai_edge_litert.interpreter import Interpreter

    scale, zero = Interpreter(model_content=model).get_input_details()[0]["quantization"]
    real = np.arange(256, dtype=np.float32) / np.float32(255)
    expected = np.clip(np.rint(real / np.float32(scale)) + zero, -128, 127).astype(int)
    assert [int(line.split()[1]) for line in lines if line.startswith("pixel ")] \
        == expected.tolist()


def test_header_arena_runs_and_the_measured_one_is_the_smallest(package, tflm):
    folder, model, _, section, _ = package
    header = (folder / MICRO_HEADER).read_text()
    size, measured = int(_constant(header, "kArenaSize")), int(_constant(header, "kArenaMeasured"))
    assert size == section["arena_bytes_header"] and measured == section["arena_bytes"]
    assert size >= measured * 1.25
    x = np.full((1, 28, 28, 1), -128, np.int8)
    for arena in (size, measured):
        interpreter = tflm.Interpreter.from_bytes(model, arena_size=arena)
        interpreter.set_input(x, 0)
        interpreter.invoke()
    with pytest.raises(RuntimeError):
        interpreter = tflm.Interpreter.from_bytes(model, arena_size=measured - 16)
        interpreter.set_input(x, 0)
        interpreter.invoke()


def test_tflm_answers_like_litert_on_test_images(package, tflm, mnist):
    """Against litert on the same int8 inputs, quantized with the header's input constants."""
    from ai_edge_litert.interpreter import Interpreter

    folder, model, _, section, _ = package
    header = (folder / MICRO_HEADER).read_text()
    scale, zero = _constant(header, "kInputScale"), int(_constant(header, "kInputZeroPoint"))
    images, labels = mnist.x_test[:IMAGES], mnist.y_test[:IMAGES]
    q = np.clip(np.rint(images / np.float32(255) / np.float32(scale)) + zero, -128, 127)
    q = q.astype(np.int8)[..., np.newaxis]
    litert = Interpreter(model_content=model)
    litert.resize_tensor_input(0, [len(q), 28, 28, 1])
    litert.allocate_tensors()
    litert.set_tensor(litert.get_input_details()[0]["index"], q)
    litert.invoke()
    expected = litert.get_tensor(litert.get_output_details()[0]["index"]).argmax(axis=1)
    interpreter = tflm.Interpreter.from_bytes(model, arena_size=int(_constant(header,
                                                                               "kArenaSize")))
    got = []
    for x in q:
        interpreter.set_input(x[np.newaxis], 0)
        interpreter.invoke()
        got.append(int(interpreter.get_output(0).argmax()))
    agreement = float(np.mean(np.array(got) == expected))
    assert agreement >= 0.999
    verification = section["verification"]
    assert verification["test_images"] == IMAGES
    assert verification["agreement_with_litert"] == pytest.approx(agreement, abs=1e-6)
    assert verification["accuracy"] == pytest.approx(np.mean(np.array(got) == labels), abs=1e-6)
    assert verification["reference_kernels"]["agreement_at_margin_2_steps"] == 1.0


def test_manifest_section_lists_the_files_operators(package):
    _, model, _, section, lines = package
    assert set(section["ops"]) == _litert_ops(model)
    assert section["source_sha256"] == __import__("hashlib").sha256(model).hexdigest()
    json.dumps(section, allow_nan=False)  # strict JSON, as the manifest is written
    assert any(line.strip().startswith("micro (TFLM)") and line.endswith("ok") for line in lines)


def test_without_tflite_micro_the_export_skips_it_in_one_line(tmp_path, monkeypatch,
                                                              test_artifacts, mnist):
    from export import micro_export

    for name in [n for n in sys.modules if n == "tflite_micro" or n.startswith("tflite_micro.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tflite_micro", None)
    shutil.copy(test_artifacts / "model_int8.tflite", tmp_path)
    (tmp_path / MICRO_SOURCE).write_text("// from an older int8 file\n")
    lines: list[str] = []
    result, section = micro_export.export(tmp_path, mnist.x_test[:10], mnist.y_test[:10],
                                          lines.append)
    assert result is None and section is None
    assert len(lines) == 1 and "skipped" in lines[0] and "pip install" in lines[0]
    assert not (tmp_path / MICRO_SOURCE).exists() and not (tmp_path / MICRO_HEADER).exists()


def test_published_export_describes_its_micro_files(test_artifacts):
    manifest = json.loads((test_artifacts / MANIFEST_FILE).read_text())
    section = manifest.get("micro")
    if section is None:
        pytest.skip(f"{test_artifacts} was exported without tflite-micro")
    assert section["source_sha256"] == sha256_file(test_artifacts / section["source"])
    for entry in section["files"]:
        assert sha256_file(test_artifacts / entry["path"]) == entry["sha256"]
