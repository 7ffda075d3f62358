from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli import app, command

group = typer.Typer(rich_markup_mode=None)
app.add_typer(group, name="devices")


@group.callback(invoke_without_command=True)
def devices(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="ask each device whether it answers")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """List device profiles (local, edgekit/profiles/*.yaml and your own, `edgekit devices new`), and
    with --check whether each answers (exit 1
    when one that is set up does not; one that is not set up is skipped, saying why);
    `edgekit devices setup NAME` prepares what a device needs once on this machine."""
    if ctx.invoked_subcommand is not None:
        return
    from edgekit import output
    from edgekit.devices import DEFAULT, connect, load_profile, shipped, user_profiles
    from edgekit.devices.process import DeviceError
    from edgekit.errors import EdgekitError

    import yaml

    files = {**user_profiles(), **shipped()}  # a shipped name wins, as load_profile has it
    rows = []
    for name in [DEFAULT, *(n for n in files if n != DEFAULT)]:
        raw = yaml.safe_load(files[name].read_text()) if name in files else {}
        raw = raw if isinstance(raw, dict) else {}
        # answers: True it answered --check, False it did not, None not asked (not set up, or no --check)
        row = {"name": name, "transport": raw.get("transport", ""), "description": raw.get("description", ""),
               "status": "not checked", "answers": None}
        try:
            prof = load_profile(name)
            row.update(transport=prof.transport, description=prof.description, source=prof.source)
            if name == DEFAULT and not check:
                row["status"] = "ok (this machine)"
            transport = connect(prof)  # what a transport needs here (a userland), checked without reaching it
            if check:
                info = transport.check()
                row.update(status="answers: " + ", ".join(f"{k} {v}" for k, v in info.items() if v), answers=True)
        except EdgekitError as e:
            why = str(e).split(": ", 1)[-1]
            row["status"] = f"{'skipped' if check else 'not set up'}: {why}"
        except DeviceError as e:
            row.update(status=f"no answer: {e}", answers=False)
        rows.append(row)
    if json_out:
        output.emit_json(rows)
    else:
        output.table("devices", ("name", "transport", "description", "status"),
                     [(r["name"], r["transport"], r["description"], r["status"]) for r in rows])
    silent = [r["name"] for r in rows if r["answers"] is False]
    if silent:
        from edgekit.errors import Failures

        raise Failures(f"{len(silent)} device(s) did not answer: {', '.join(silent)}")


@command("new", group=group)
def new(
    name: Annotated[str, typer.Argument(help="the new device's name (its file: NAME.yaml in your profiles folder)")],
    base: Annotated[str, typer.Option("--from", help="the profile to copy: a device name or a profile file")],
    json_out: Annotated[bool, typer.Option("--json", help="print the new file and what to fill in as JSON")] = False,
) -> None:
    """Copy a device profile as your own, to edit outside the installed package: written to
    $EDGEKIT_CONFIG_DIR/devices (default ~/.config/edgekit/devices), found by name as the shipped ones are."""
    from edgekit import output
    from edgekit.devices import new_profile

    path, fill = new_profile(name, base)
    if json_out:
        output.emit_json({"name": name, "file": str(path), "fill_in": fill})
        return
    output.note(f"device {name}: {path}" + (f"; fill in {', '.join(fill)}, then `edgekit devices --check`"
                                             if fill else "; edit it, then `edgekit devices --check`"))


@command("setup", group=group)
def setup(
    device: Annotated[str, typer.Argument(help="device name (see `edgekit devices`) or profile file")],
    force: Annotated[bool, typer.Option("--force", help="build it again even if it is there")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print what was set up as JSON")] = False,
) -> None:
    """Prepare what a device needs once on this machine: for arm64-emulated (transport qemu), an arm64
    userland with python, numpy and onnxruntime (downloaded once, no root)."""
    from edgekit import output
    from edgekit.devices import load_profile, setup as run_setup

    done = run_setup(load_profile(device), output.note, force)
    if json_out:
        output.emit_json(done)
        return
    output.note(
        f"{device}: userland in {done['folder']}: python {done['python']} ({done['machine']}), "
        + ", ".join(f"{k} {v}" for k, v in done["wheels"].items())
        + f"; downloaded {done['download_bytes'] / 1e6:.1f} MB, {done['unpacked_bytes'] / 1e6:.0f} MB on disk"
        + (f", built in {done['setup_s']:.0f} s" if done["built"] else "")
    )


@command("build-runner", group=group)
def build_runner(
    arch: Annotated[str | None, typer.Option("--arch", help="x86_64 or aarch64 (default: this machine's; "
                                                          "aarch64 cross-compiles are not supported yet)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the build as JSON")] = False,
) -> None:
    """Build the native runner (native/runner, C++ with CMake) into edgekit's cache, keyed by its sources,
    compiler and runtime library versions; a build of the same key is reused. A device profile with
    `runner: native` (local only so far) runs GGUF and ExecuTorch artifacts through it."""
    from edgekit import output
    from edgekit.devices import native

    b = native.build(arch, note=output.note)
    if json_out:
        output.emit_json({"binary": str(b.binary), "arch": b.arch, "key": b.key, "built": b.built,
                          "build_s": b.build_s, "binary_bytes": b.binary_bytes, "lib_bytes": b.lib_bytes,
                          "backends": list(b.backends), "targets": list(b.targets)})
        return
    how = f"built in {b.build_s:.1f} s" if b.built else f"cached (built in {b.build_s:.1f} s)"
    output.note(f"native runner ({b.arch}): {b.binary}, {how}; binary {b.binary_bytes / 1e6:.2f} MB, libraries "
                f"{b.lib_bytes / 1e6:.1f} MB; backends: {', '.join(b.backends) or 'none'} "
                f"(targets: {', '.join(b.targets) or 'none'})")
