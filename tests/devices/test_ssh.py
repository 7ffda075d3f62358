"""The ssh transport against a real OpenSSH server on 127.0.0.1 (see conftest.sshd)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import remote_checks as checks

from edgekit.devices import DeviceProfile, connect
from edgekit.devices.process import DeviceError


@pytest.fixture
def workdir(tmp_path) -> str:
    """A per-test workdir under the sessions' $HOME, with a space in it: ``~`` expands on the device."""
    return f"~/{tmp_path.name} work"


@pytest.fixture
def other_key(tmp_path) -> Path:
    """A key pair the server knows nothing about."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "other_key"], check=True)
    return tmp_path / "other_key"


def test_push_copies_then_skips_what_is_there(sshd, workdir, artifact, tmp_path):
    transport = connect(sshd.profile(workdir))
    folder = tmp_path / "art"
    shutil.copytree(artifact, folder)
    remote = checks.push_skips_what_is_there(transport, folder)
    assert remote.parents[1] == sshd.home / workdir[2:]
    checks.changed_artifact_goes_to_a_new_folder(transport, folder, remote)


def test_pull_brings_files_back(sshd, workdir, artifact, tmp_path):
    checks.pull_brings_files_back(connect(sshd.profile(workdir)), artifact, tmp_path / "back")


def test_runner_runs_a_real_request(sshd, workdir, artifact):
    checks.runner_runs_the_artifact(connect(sshd.profile(workdir)), artifact)
    checks.runner_is_installed_once(lambda: connect(sshd.profile(workdir)))


def test_check_reports_the_device_python(sshd, workdir):
    checks.check_reports_the_python(connect(sshd.profile(workdir)))


def test_names_from_artifacts_and_profiles_reach_no_shell(sshd, tmp_path):
    workdir = f"~/{tmp_path.name} it's $(touch pwned5)"
    checks.weird_names_run_nothing(connect(sshd.profile(workdir)), tmp_path, sshd.home)


def test_runner_killed_mid_run_is_a_device_error(sshd, workdir, artifact):
    message = checks.killed_runner_is_an_error(connect(sshd.profile(workdir)), artifact)
    assert message == "killed on the device by SIGKILL (out of memory?)"


def test_connection_dropped_mid_run_is_a_device_error(sshd, workdir, artifact):
    message = checks.killed_runner_is_an_error(connect(sshd.profile(workdir)), artifact, ancestor="sshd")
    assert message.startswith(f"the connection to 127.0.0.1:{sshd.port} dropped (")


def test_unknown_host_key_is_refused(sshd, workdir, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    transport = connect(sshd.profile(workdir, known_hosts_file=str(known_hosts)))
    with pytest.raises(DeviceError) as caught:
        transport.check()
    assert str(caught.value) == (
        "host key verification failed for 127.0.0.1 (add it to known_hosts, or set accept_new_host_key: true)"
    )
    assert known_hosts.read_text() == ""


def test_accept_new_host_key_trusts_on_first_use(sshd, workdir, tmp_path):
    known_hosts = tmp_path / "known hosts"  # a space: ssh splits option values on spaces unless quoted
    known_hosts.write_text("")
    transport = connect(sshd.profile(workdir, known_hosts_file=str(known_hosts), accept_new_host_key=True))
    transport.check()
    assert sshd.known_hosts.read_text().split()[2] in known_hosts.read_text()  # the server's key, trusted now
    connect(sshd.profile(workdir, known_hosts_file=str(known_hosts))).check()


def test_changed_host_key_is_refused_even_with_accept_new(sshd, workdir, tmp_path, other_key):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {other_key.with_suffix('.pub').read_text()}")
    transport = connect(sshd.profile(workdir, known_hosts_file=str(known_hosts), accept_new_host_key=True))
    with pytest.raises(DeviceError, match="^host key verification failed for 127.0.0.1"):
        transport.check()


def test_nothing_listening_cannot_reach(sshd, workdir):
    port = checks.free_port()
    with pytest.raises(DeviceError) as caught:
        connect(sshd.profile(workdir, port=port)).push(sshd.home, [])
    assert str(caught.value) == f"cannot reach 127.0.0.1:{port} (Connection refused)"


def test_wrong_key_is_refused(sshd, workdir, other_key):
    with pytest.raises(DeviceError, match=r"^\S+@127.0.0.1 refused our ssh key \(Permission denied"):
        connect(sshd.profile(workdir, identity_file=str(other_key))).check()


def test_missing_python_is_named(sshd, workdir):
    with pytest.raises(DeviceError, match="^'/no/python3' not found on the device"):
        connect(sshd.profile(workdir, python="/no/python3")).check()


def test_argv_verifies_host_keys_and_quotes_the_command():
    profile = DeviceProfile(name="b", transport="ssh", host="board", user="pi", port=2222, identity_file="~/k")
    argv = connect(profile).shell("echo 'hi there'")
    assert argv[0] == "ssh" and argv[-3:] == ["--", "pi@board", """exec /bin/sh -c 'echo '"'"'hi there'"'"''"""]
    options = " ".join(argv)
    assert "-p 2222" in options and "BatchMode=yes" in options and "StrictHostKeyChecking=yes" in options
    assert "-i /" in options and "UserKnownHostsFile" not in options
    assert connect(profile).info() == {"transport": "ssh", "host": "board", "user": "pi", "port": 2222}
    with pytest.raises(DeviceError, match="not a host name"):
        connect(DeviceProfile(name="b", transport="ssh", host="-oProxyCommand=x")).shell("true")


def _profile_yaml(path: Path, profile: DeviceProfile) -> Path:
    import yaml

    data = {k: v for k, v in profile.as_dict().items() if k != "source"}
    path.write_text(yaml.safe_dump(data))
    return path


def test_edgekit_profile_through_sshd(cli, sshd, workdir, artifact, tmp_path):
    """The whole CLI path: a profile file naming the loopback sshd, every metric measured there."""
    import json

    prof = _profile_yaml(tmp_path / "board.yaml", sshd.profile(workdir, name="loopback-board"))
    out = tmp_path / "results" / "board.json"
    r = cli("profile", artifact, "--device", prof, "-o", out, "--prompt-len", "16", "--gen", "8", "--runs", "2",
            "--eval-tokens", "200")
    assert r.code == 0, r.err
    data = json.loads(out.read_text())
    assert data["complete"] and data["device"]["transport"] == "ssh" and data["device"]["name"] == "loopback-board"
    m = {k: v["value"] for k, v in data["metrics"].items()}
    assert m["decode_tok_s"] > 0 and m["peak_rss_mb"] > 0
    assert abs(m["ppl"] / m["ppl_ref"] - 1) < 0.005 and m["top1_agree"] > 0.99


def test_edgekit_profile_wrong_host_is_one_line(cli, sshd, workdir, artifact, tmp_path):
    from remote_checks import free_port

    prof = _profile_yaml(tmp_path / "gone.yaml", sshd.profile(workdir, name="gone", port=free_port()))
    r = cli("profile", artifact, "--device", prof, "--no-accuracy", "--runs", "1")
    assert r.code == 2
    assert (r.said.startswith("error: device gone: push: cannot reach 127.0.0.1:")
            and r.said.strip().count("\n") == 0), r.err
