import pytest

from edgekit import recipes
from edgekit.errors import EdgekitError


def test_parse_defaults_and_group_sizes():
    assert recipes.parse("onnx", None).name == "fp32"
    r = recipes.parse("onnx", "int4")
    assert (r.scheme, r.group_size, r.name) == ("int4", 64, "int4-g64-mix1")
    assert recipes.parse("onnx", "INT4-g128").group_size == 128
    assert recipes.parse("onnx", "int8").group_size is None


@pytest.mark.parametrize(
    "target, name, message",
    [
        ("onnx", "int3", "unknown recipe 'int3'"),
        ("onnx", "int8-g32", "unknown option 'g32'"),
        ("onnx", "int4-x", "unknown option 'x'"),
        ("onnx", "int4-g100", "group size 100"),
        ("onnx", "int4-emb4", "unknown option 'emb4'"),
        ("onnx", "int4-gptq-gptq", "unknown option 'gptq'"),
        ("onnx", "int8-gptq", "unknown option 'gptq'"),
        ("executorch", "fp32-emb8", "unknown option 'emb8'"),
        ("executorch", "8da4w-emb2", "'emb2' is not supported"),
        ("tflite", "fp32", "unknown target 'tflite'"),
    ],
)
def test_parse_rejects(target, name, message):
    with pytest.raises(EdgekitError, match=message):
        recipes.parse(target, name)


def test_embedding_option():
    r = recipes.parse("executorch", "8da4w-g64-emb4-mix0")
    assert (r.group_size, r.embedding_bits, r.name) == (64, 4, "8da4w-g64-emb4")
    assert recipes.parse("executorch", "int8-emb8").name == "int8-emb8"
    assert recipes.parse("executorch", "8da8w").embedding_bits is None
    # 8da4w quantizes the embedding to int8 unless told otherwise (a 4-bit file is not twice llama.cpp's
    # q4_0; a tied table is the head's own) and keeps its two layers most sensitive to 4 bits at 8 bits
    assert recipes.parse("executorch", "8da4w").name == "8da4w-g32-emb8-mix2"
    assert recipes.parse("executorch", "8da4w-emb8-mix3").name == "8da4w-g32-emb8-mix3"
    with pytest.raises(EdgekitError, match="unknown option 'gptq'"):
        recipes.parse("executorch", "8da4w-gptq")


def test_method_option():
    r = recipes.parse("onnx", "int4-gptq")
    assert (r.scheme, r.group_size, r.method, r.name) == ("int4", 64, "gptq", "int4-g64-mix1-gptq")
    assert recipes.parse("onnx", "int4-g32-gptq").name == "int4-g32-mix1-gptq"
    assert recipes.parse("onnx", "int4-gptq-g64-mix0").name == "int4-g64-gptq"
    assert recipes.parse("onnx", "int4").method is None
    r = recipes.parse("onnx", "int4-gptq", calibration="my.txt")
    assert r.calibration == "my.txt" and r.as_dict()["calibration"] == "my.txt"


@pytest.mark.parametrize("name", ["int4-mix0", "int8", "fp32"])
def test_calibration_only_for_calibrated_recipes(name):
    with pytest.raises(EdgekitError, match="--calibration applies to calibrated recipes .*int4-gptq"):
        recipes.parse("onnx", name, calibration="my.txt")


def test_thresholds_tighter_for_fp32_than_quantized():
    fp32, int4 = recipes.parse("onnx", "fp32").parity, recipes.parse("onnx", "int4").parity
    assert fp32.top1_agree > int4.top1_agree
    assert fp32.failures({"max_abs_logit_diff": 0.0, "top1_agree": 1.0, "kl_mean": 0.0}) == []
    assert fp32.failures({"max_abs_logit_diff": 1.0, "top1_agree": 1.0, "kl_mean": 0.0})


@pytest.mark.parametrize("field", ["max_abs_logit_diff", "top1_agree", "kl_mean"])
def test_a_nan_figure_fails_parity(field):
    """NaN compares false with every limit: it must fail, not slip through."""
    good = {"max_abs_logit_diff": 0.0, "top1_agree": 1.0, "kl_mean": 0.0}
    for thresholds in (recipes.parse("onnx", "fp32").parity, recipes.Thresholds()):
        failures = thresholds.failures({**good, field: float("nan")})
        assert failures and field in failures[0]


def test_calibrated_method_option():
    r = recipes.parse("gguf", "q4_0-imatrix")
    assert (r.scheme, r.method, r.name, r.calibration) == ("q4_0", "imatrix", "q4_0-imatrix", None)
    assert recipes.parse("gguf", "int4-imatrix").name == "int4-g32-imatrix"
    assert recipes.parse("gguf", "q4_k_m-imatrix", calibration="/t.txt").as_dict()["calibration"] == "/t.txt"
    with pytest.raises(EdgekitError, match="unknown option 'imatrix'"):
        recipes.parse("gguf", "q8_0-imatrix")
    with pytest.raises(EdgekitError, match="--calibration applies to calibrated recipes .*q4_0-imatrix"):
        recipes.parse("gguf", "q4_0", calibration="/t.txt")


def test_mixed_option():
    r = recipes.parse("onnx", "int4-mix3")
    assert (r.mixed, r.name, r.as_dict()["mixed_layers"]) == (3, "int4-g64-mix3", 3)
    assert recipes.parse("onnx", "int4-g64-mix2-imatrix", calibration="c.txt").name == "int4-g64-mix2-imatrix"
    assert recipes.parse("onnx", "int4-mix0").mixed is None and recipes.parse("onnx", "int4-mix0").name == "int4-g64"
    with pytest.raises(EdgekitError, match="unknown option 'mix2'"):
        recipes.parse("onnx", "int8-mix2")


def test_target_options_are_declared_by_the_target_and_carried_in_the_recipe():
    assert recipes.parse("onnx", "fp32").option("exporter") == "auto"
    assert recipes.parse("onnx", "fp32", options={"exporter": "optimum"}).as_dict()["exporter"] == "optimum"
    assert recipes.parse("executorch", "fp32").options == ()
    assert recipes.option_values(["exporter=genai"], {"compute_units": None}) == {
        "compute_units": None, "exporter": "genai"}
    with pytest.raises(EdgekitError, match="--exporter does not apply to target executorch"):
        recipes.parse("executorch", "fp32", options={"exporter": "genai"})
    with pytest.raises(EdgekitError, match="NAME=VALUE"):
        recipes.option_values(["exporter"])
    with pytest.raises(EdgekitError, match="given twice"):
        recipes.option_values(["exporter=genai"], {"exporter": "optimum"})
