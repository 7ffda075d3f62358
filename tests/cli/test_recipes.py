import json


def test_recipes_lists_targets_and_recipes(cli):
    r = cli("recipes")
    assert r.code == 0
    for word in ("onnx", "fp32", "fp16", "int8", "int4"):
        assert word in r.out
    rows = json.loads(cli("recipes", "--json").out)
    assert {(row["target"], row["recipe"]) for row in rows} >= {("onnx", "int4"), ("onnx", "fp32")}
    gguf_q4 = next(row for row in rows if (row["target"], row["recipe"]) == ("gguf", "q4_0"))
    assert "-imatrix" in gguf_q4["options"]  # a calibrated method is an option of the scheme
