"""The adb transport against a stand-in ``adb`` (see conftest.ADB_STANDIN); the shared logic it runs
is the same code the ssh tests run against a real sshd."""

from __future__ import annotations

import shutil

import pytest
import remote_checks as checks

from edgekit.devices import connect
from edgekit.devices.process import DeviceError


def test_push_copies_then_skips_what_is_there(adb_profile, phone, artifact, tmp_path):
    transport = connect(adb_profile())
    folder = tmp_path / "art"
    shutil.copytree(artifact, folder)
    remote = checks.push_skips_what_is_there(transport, folder)
    assert remote.parents[1] == phone / "edgekit"  # ~ is the device's home
    checks.changed_artifact_goes_to_a_new_folder(transport, folder, remote)


def test_pull_brings_files_back(adb_profile, artifact, tmp_path):
    checks.pull_brings_files_back(connect(adb_profile()), artifact, tmp_path / "back")


def test_runner_runs_a_real_request(adb_profile, artifact):
    checks.runner_runs_the_artifact(connect(adb_profile()), artifact)
    checks.runner_is_installed_once(lambda: connect(adb_profile()))


def test_check_reports_the_device_python(adb_profile):
    checks.check_reports_the_python(connect(adb_profile(serial=None)))  # one phone: no serial needed


def test_names_from_artifacts_and_profiles_reach_no_shell(adb_profile, phone, tmp_path):
    transport = connect(adb_profile(workdir=f"{phone}/it's $(touch pwned5)"))
    checks.weird_names_run_nothing(transport, tmp_path, phone)


def test_runner_killed_mid_run_is_a_device_error(adb_profile, artifact):
    message = checks.killed_runner_is_an_error(connect(adb_profile()), artifact)
    assert message == "killed on the device by SIGKILL (out of memory?)"


def test_unreachable_phone_is_named(adb_profile):
    with pytest.raises(DeviceError) as caught:
        connect(adb_profile(serial="R5CX30ABCDE")).check()
    assert str(caught.value).startswith("adb cannot reach R5CX30ABCDE (adb: device 'R5CX30ABCDE' not found)")


def test_missing_adb_and_python_are_named(adb_profile, tmp_path):
    with pytest.raises(DeviceError, match="^adb not found at '.*no-adb' \\(install Android platform-tools"):
        connect(adb_profile(adb=str(tmp_path / "no-adb"))).check()
    with pytest.raises(DeviceError, match="^'/no/python3' not found on the device"):
        connect(adb_profile(python="/no/python3")).push(tmp_path, [])


def test_argv_and_info(adb_profile):
    transport = connect(adb_profile(adb="adb"))
    assert transport.shell("echo hi") == ["adb", "-s", "emulator-5554", "shell", "echo hi"]
    assert connect(adb_profile(adb="adb", serial=None)).shell("true") == ["adb", "shell", "true"]
    assert transport.info() == {"transport": "adb", "serial": "emulator-5554"}


def test_no_adb_is_said_before_any_work(cli, artifact, tmp_path, monkeypatch):
    """`profile --device PHONE` with no adb installed: one line before the reference is computed or
    anything pushed (the README promises to stop before any work), no INCOMPLETE table."""
    from edgekit.profile import session

    (tmp_path / "phone.yaml").write_text(f"name: phone\ntransport: adb\nadb: {tmp_path / 'no-adb'}\n")
    monkeypatch.setattr(session, "_reference", lambda *a: pytest.fail("the reference was computed"))
    r = cli("profile", artifact, "--device", tmp_path / "phone.yaml")
    assert r.code == 2 and r.err.startswith("error: device phone: push: adb not found at") and r.out == ""
