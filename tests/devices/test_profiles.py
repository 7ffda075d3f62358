"""Shipped device profiles, and what a profile file may and may not say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from edgekit.devices import FILL_IN, PROFILES_DIR, _TYPES, DeviceProfile, load_profile, parse_profile, shipped
from edgekit.errors import EdgekitError

PROFILE_FILES = sorted(PROFILES_DIR.glob("*.yaml"))


def test_the_issue_s_profiles_are_shipped():
    assert set(shipped()) >= {"local", "rpi5", "jetson-orin-nano", "pixel-8", "galaxy-s24", "mac-m2"}
    assert len(shipped()) == len(PROFILE_FILES)  # names are unique


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_shipped_profile_parses_once_filled_in(path):
    data = yaml.safe_load(path.read_text())
    unfilled = [key for key, value in data.items() if value == FILL_IN]
    if unfilled:
        with pytest.raises(EdgekitError, match=f"'{unfilled[0]}' is not filled in"):
            load_profile(str(path))
        for key in unfilled:  # each says what to put there
            assert re.search(rf"^{key}: {FILL_IN}\s+# \S", path.read_text(), re.MULTILINE), key
        data = {**data, **{key: "example" for key in unfilled}}
    profile = parse_profile(data, str(path))
    assert profile.description and set(data) <= set(_TYPES)
    if not unfilled:  # found by its name too
        assert load_profile(profile.name).transport == profile.transport


def test_unknown_keys_are_errors():
    with pytest.raises(EdgekitError, match=r"unknown key\(s\) hostname; known: name, transport"):
        parse_profile({"name": "x", "transport": "ssh", "hostname": "board"}, "x.yaml")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("port", "22", "'port' must be int, got '22'"),
        ("threads", True, "'threads' must be int, got True"),
        ("accept_new_host_key", "yes", "'accept_new_host_key' must be bool"),
        ("timeout_s", "10s", "'timeout_s' must be int or float"),
        ("threads", 0, "'threads' must be an integer from 1 to 256, got 0"),
    ],
)
def test_wrong_types_are_errors(key, value, message):
    with pytest.raises(EdgekitError, match=re.escape(message)):
        parse_profile({"name": "x", "transport": "ssh", "host": "board", key: value}, "x.yaml")


def test_missing_and_unknown_transport_and_host():
    with pytest.raises(EdgekitError, match="transport ssh needs 'host'"):
        parse_profile({"name": "x", "transport": "ssh"}, "x.yaml")
    with pytest.raises(EdgekitError, match="unknown transport 'telnet'"):
        parse_profile({"name": "x", "transport": "telnet"}, "x.yaml")
    assert parse_profile({"name": "x", "transport": "adb"}, "x.yaml") == DeviceProfile(name="x", transport="adb")


@pytest.mark.parametrize("text", ["name: [unclosed\n", "name: x\n  transport: : ssh\n", "\tname: x\n"])
def test_malformed_yaml_is_one_line(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(EdgekitError) as caught:
        load_profile(str(path))
    assert str(caught.value).startswith(f"device profile {path}: not valid YAML (") and "\n" not in str(caught.value)


def test_not_a_mapping_and_unknown_name(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- name: x\n")
    with pytest.raises(EdgekitError, match="expected a mapping"):
        load_profile(str(path))
    with pytest.raises(EdgekitError, match="unknown device 'nope'; known: local, "):
        load_profile("nope")


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"timeout_s": -5}, "'timeout_s' must be a number above 0 and at most 604,800, got -5"),
        ({"timeout_s": 0}, "'timeout_s' must be a number above 0"),
        ({"timeout_s": float("nan")}, "'timeout_s' must be a number above 0"),
        ({"timeout_s": float("inf")}, "'timeout_s' must be a number above 0"),  # issue 30: an OverflowError later
        ({"timeout_s": 1e12}, "'timeout_s' must be a number above 0 and at most 604,800, got 1000000000000.0"),
        ({"threads": 100000}, "'threads' must be an integer from 1 to 256"),  # issue 30: 3,000 threads, 16 GB
        ({"port": 0}, "'port' must be an integer from 1 to 65,535"),
        ({"port": 70000}, "'port' must be an integer from 1 to 65,535"),
    ],
)
def test_numbers_out_of_range_are_errors(extra, message):
    with pytest.raises(EdgekitError, match=re.escape(message)):
        parse_profile({"name": "x", "transport": "ssh", "host": "board", **extra}, "x.yaml")


def test_a_bad_device_in_a_sweep_is_a_config_error_before_any_export(cli, tmp_path, monkeypatch):
    import edgekit.sweep

    (tmp_path / "dev.yaml").write_text("name: dev\ntransport: local\ntimeout_s: -5\n")
    (tmp_path / "sweep.toml").write_text("models = ['builtin:tiny']\ndevices = ['dev.yaml']\n"
                                         "[recipes]\nonnx = ['fp32']\n")
    monkeypatch.setattr(edgekit.sweep, "_artifact", lambda *a: pytest.fail("exported before the config was checked"))
    r = cli("sweep", tmp_path / "sweep.toml")
    assert r.code == 2 and "'timeout_s' must be a number above 0" in r.err and r.err.count("\n") == 1, r.err


def test_an_unknown_device_lists_each_known_one_once():
    with pytest.raises(EdgekitError) as e:
        load_profile("nowhere")
    known = str(e.value).split("known: ")[1].split(", ")
    assert known[0] == "local" and len(known) == len(set(known)) and set(shipped()) <= set(known)


def test_a_transport_takes_its_own_keys_only():
    from edgekit.devices import connect

    with pytest.raises(EdgekitError, match=r"unknown key\(s\) host; known: name, transport, .*serial, adb$"):
        parse_profile({"name": "x", "transport": "adb", "host": "board"}, "x.yaml")
    p = parse_profile({"name": "b", "transport": "ssh", "host": "board", "port": 2222}, "b.yaml")
    assert (p.host, p.port, p.options.port) == ("board", 2222, 2222) and p.as_dict()["port"] == 2222
    assert p == DeviceProfile(name="b", transport="ssh", host="board", port=2222)
    assert connect(p).info()["transport"] == "ssh"


def test_local_pull_copies_back(tmp_path):
    from edgekit.devices import connect

    (tmp_path / "there").mkdir()
    (tmp_path / "there" / "a.txt").write_text("measured")
    connect(load_profile("local")).pull(str(tmp_path / "there"), ["a.txt"], tmp_path / "here")
    assert (tmp_path / "here" / "a.txt").read_text() == "measured"


def test_devices_new_copies_a_shipped_profile_to_edit_outside_the_package(cli, tmp_path, monkeypatch):
    """A shipped profile left to fill in says how to get one's own copy (never "edit a file inside the
    installed package"); `devices new` writes it to the user's folder, where it is found by name."""
    r = cli("profile", tmp_path, "--device", "rpi5")
    assert r.code == 2 and "edgekit devices new my-rpi5 --from rpi5" in r.err and "(edit " not in r.err
    r = cli("devices", "new", "board", "--from", "rpi5", "--json")
    assert r.code == 0, r.err
    made = json.loads(r.out)
    path = Path(made["file"])
    assert path.parent == tmp_path.parent / f"{tmp_path.name}-edgekit-config" / "devices"
    assert made["fill_in"] == ["host", "user"] and path.read_text().count("name: board") == 1
    assert "# Raspberry Pi 5 over ssh" in path.read_text()  # the comments that explain it come along
    with pytest.raises(EdgekitError, match=f"'host' is not filled in \\(edit {re.escape(str(path))}\\)"):
        load_profile("board")
    path.write_text(path.read_text().replace("host: FILL-IN", "host: pi.local").replace("user: FILL-IN", "user: pi"))
    assert load_profile("board").host == "pi.local" and "board" in cli("devices").out
    for args, says in ((("board", "--from", "rpi5"), "exists already"), (("rpi5", "--from", "local"), "taken"),
                       (("x/y", "--from", "rpi5"), "use letters"), (("b2", "--from", "nope"), "unknown device 'nope'")):
        r = cli("devices", "new", *args)
        assert r.code == 2 and says in r.err, (args, r.err)
