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


def test_recipes_list_each_target_s_options_with_their_values_and_default(cli):
    r = cli("recipes")
    assert r.code == 0 and "target options (export --option NAME=VALUE)" in r.out
    rows = {line.split("│")[2].strip(): line for line in r.out.splitlines() if line.count("│") == 6}
    assert "auto, genai, optimum" in rows["exporter (--exporter)"] and "│ auto " in rows["exporter (--exporter)"]
    assert "all, cpu, cpu-gpu, cpu-ne" in rows["compute_units (--compute-units)"]
    rows = json.loads(cli("recipes", "--json").out)
    for row in rows:  # on each row of a target that has options; a target without any has no such key
        if row["target"] == "onnx":
            assert row["target_options"]["exporter"] == {
                "choices": ["auto", "genai", "optimum"], "default": "auto",
                "help": row["target_options"]["exporter"]["help"]}
        elif row["target"] == "coreml":
            assert row["target_options"]["compute_units"]["default"] == "all"
        else:
            assert "target_options" not in row
