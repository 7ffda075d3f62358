from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli import command


@command("devices")
def devices(
    check: Annotated[bool, typer.Option("--check", help="ask each device whether it answers")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """List device profiles (local and profiles/*.yaml), and with --check whether each answers."""
    from edgekit import output
    from edgekit.devices import connect, load_profile, shipped
    from edgekit.devices.process import DeviceError
    from edgekit.errors import EdgekitError

    import yaml

    files = shipped()
    rows = []
    for name in ["local", *(n for n in files if n != "local")]:
        raw = yaml.safe_load(files[name].read_text()) if name in files else {}
        raw = raw if isinstance(raw, dict) else {}
        row = {"name": name, "transport": raw.get("transport", ""), "description": raw.get("description", ""), "status": "ok"}
        try:
            prof = load_profile(name)
            row.update(transport=prof.transport, description=prof.description, source=prof.source)
            if check:
                info = connect(prof).check()
                row["status"] = "answers: " + ", ".join(f"{k} {v}" for k, v in info.items() if v)
        except EdgekitError as e:
            row["status"] = str(e).split(": ", 1)[-1].replace(f" (edit {files.get(name)})", "")
        except DeviceError as e:
            row["status"] = f"no answer: {e}"
        rows.append(row)
    if json_out:
        output.emit_json(rows)
    else:
        output.table("devices", ("name", "transport", "description", "status"),
                     [(r["name"], r["transport"], r["description"], r["status"]) for r in rows])
