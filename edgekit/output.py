"""The sink: what a command prints goes to stdout (a rich table, a rendered format, or JSON), everything
else to stderr (notes, errors, progress: a spinner or bar on a terminal, plain timed lines elsewhere).
What the tables and formats say is made in ``edgekit.report``; this module only prints it and writes files."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console

err = Console(stderr=True, highlight=False, emoji=False)
# piped (CI logs, files) a table is not squeezed into 80 columns: COLUMNS, or wide enough for every metric
out = Console(highlight=False, emoji=False, soft_wrap=True,
              width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 240)


def error(message: str) -> None:
    """``error: message``, one line on stderr, whatever the message holds: it is plain text (paths and
    names may hold ``[...]``), its line breaks and control characters are shown escaped, and bytes
    that are not UTF-8 (a path or argument from the OS) as U+FFFD."""
    from rich.text import Text

    err.print(Text.assemble(("error:", "bold red"), " ", printable(str(message), one_line=True)), soft_wrap=True)


def note(message: str) -> None:
    err.print(printable(message), markup=False, soft_wrap=True)


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c not in (0x09, 0x0A)}


def printable(text: str, one_line: bool = False) -> str:
    """``text`` safe to print: the undecodable bytes of OS strings (surrogate escapes) as U+FFFD,
    control characters escaped, and with ``one_line`` line breaks too."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        raw = text.encode("utf-8", "replace")
    text = raw.decode("utf-8", "replace").translate(_CONTROL)
    return text.replace("\n", "\\n") if one_line else text


def write_file(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file beside it, then a rename); on any
    failure (a full disk, Ctrl-C) the temporary file is removed and ``path`` is left as it was."""
    import tempfile
    from pathlib import Path

    from edgekit.errors import EdgekitError

    path = Path(path)
    check_writable(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise EdgekitError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def check_writable(path) -> None:
    """Refuse, before any work, a file destination that cannot be written: a folder, a path under a
    file, a read-only file or folder."""
    from pathlib import Path

    from edgekit.errors import EdgekitError

    path = Path(path)
    if path.is_dir():
        raise EdgekitError(f"cannot write {path}: it is a folder; name a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise EdgekitError(f"cannot write {path}: the file is read-only")
    check_folder(path.parent, f"cannot write {path}")


def check_folder(folder, what: str | None = None) -> None:
    """Refuse, before any work, a folder that cannot be made or written to."""
    from pathlib import Path

    from edgekit.errors import EdgekitError

    folder = Path(folder)
    what = what or f"cannot write to {folder}"
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise EdgekitError(f"{what}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise EdgekitError(f"{what}: {parent} is not writable")


def save_somewhere(name: str, text: str) -> str | None:
    """Keep ``text`` that could not be written where it was asked for: a file in the temporary folder
    (its path), or None where even that fails."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix="edgekit-", suffix=f"-{name}")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return tmp
    except OSError:
        return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def emit_json(data) -> None:
    from edgekit import jsonfile

    sys.stdout.write(jsonfile.dumps(data, default=str) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[object]], keep: int = 0,
          less_needed: Sequence[str] = (), headline: Sequence[str] = ()) -> None:
    """A rich table on stdout. Title, headers and cells are plain text, never read as markup (they hold
    user strings: paths, model and device names); a cell that is a ``rich.text.Text`` keeps its style.
    The first ``keep`` columns (what names a row) are never narrowed: where the table is too wide, the
    others wrap; and where ``keep`` is given and the output is narrower than the table, the columns that
    say nothing (every cell empty or "-") go, then those ``less_needed`` (in its order), then the last
    ones, the ``headline`` ones last, until it fits; and the title names them. A cell too wide for its
    column folds onto the next line: no figure is ever cut to an ellipsis. Headers that are all empty
    (a key/value table) print no header row."""
    from rich.table import Table
    from rich.text import Text

    if keep:  # on a terminal, and piped (COLUMNS, else 240 columns): a cut figure is worse than a dropped column
        columns, rows, left_out = _collapse(list(columns), [list(r) for r in rows], keep, out.width, less_needed,
                                            headline)
        if left_out:
            title = (f"{title or ''} ({len(left_out)} column(s) left out for this terminal's width: "
                     f"{', '.join(left_out)}; --json has all)").strip()
    t = Table(title=None if title is None else Text(printable(str(title))), title_justify="left",
              show_header=any(str(c) for c in columns))
    for i, c in enumerate(columns):
        widest = max((len(str(r[i]) if r[i] is not None else "") for r in rows), default=0) if i < keep else None
        t.add_column(Text(printable(str(c))), min_width=widest, no_wrap=i < keep, overflow="fold")
    for r in rows:
        t.add_row(*(v if isinstance(v, Text) else Text(printable("" if v is None else str(v))) for v in r))
    out.print(t)


def _collapse(columns: list, rows: list[list], keep: int, width: int, less_needed: Sequence[str] = (),
              headline: Sequence[str] = ()) -> tuple[list, list[list], list[str]]:
    """Columns (after the first ``keep``) left out until the table fits ``width``: empty ones first,
    then ``less_needed`` in its order, then from the right, the ``headline`` ones last."""
    def cell(v) -> str:
        return "" if v is None else str(v)

    def needed(cols: list[int]) -> int:
        return sum(max([len(str(columns[i]))] + [len(cell(r[i])) for r in rows]) + 3 for i in cols) + 1

    shown = list(range(len(columns)))
    left_out = []
    empty = [i for i in shown[keep:] if all(cell(r[i]) in ("", "-") for r in rows)]
    named = {str(c): i for i, c in enumerate(columns) if i >= keep}
    for i in empty + [named[c] for c in less_needed if c in named and named[c] not in empty]:
        if needed(shown) <= width:
            break
        shown.remove(i)
        left_out.append(str(columns[i]))
    for i in sorted(shown[keep:], key=lambda i: (str(columns[i]) in headline, -i)):
        if needed(shown) <= width or len(shown) <= keep:
            break
        shown.remove(i)
        left_out.append(str(columns[i]))
    return [columns[i] for i in shown], [[r[i] for i in shown] for r in rows], left_out


@contextmanager
def progress(description: str) -> Iterator:
    """A spinner on stderr while a step runs; ``update(text)`` names the step in progress."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if not err.is_terminal:
        with plain_progress(description) as line:
            yield line
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(), console=err,
        transient=True
    ) as p:
        task = p.add_task(description)
        yield lambda text: p.update(task, description=f"{description}: {text}")


@contextmanager
def steps(description: str) -> Iterator:
    """A progress bar on stderr; the caller reports ``(step, done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not err.is_terminal:
        with plain_progress(description) as line:
            yield lambda step, done, total: line(step)
        return
    with Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as p:
        task = p.add_task(description, total=None)
        yield lambda step, done, total: p.update(task, description=f"{description}: {step}", completed=done,
                                                 total=total)


# where stderr is no terminal, a step still running after this many seconds gets a line again, and again
# every as many seconds, so a CI log shows that one long stage (an ExecuTorch lowering) is still at work
STILL_RUNNING_S = 60.0


@contextmanager
def plain_progress(description: str) -> Iterator:
    """Progress where stderr is no terminal (CI logs, a pipe): one plain line per new step, with the
    seconds since the start, a "still running" line every ``STILL_RUNNING_S`` while one step lasts, and a
    last line with the whole time, so a log shows where a long job is."""
    import threading
    import time

    started = time.monotonic()
    last = [None, started]  # the step, when it was last named
    lock = threading.Lock()
    done = threading.Event()

    def say(text: str) -> None:
        note(f"[{time.monotonic() - started:7.1f} s] {description}: {text}")

    def line(text: str) -> None:
        with lock:
            if text and text != last[0]:
                last[0], last[1] = text, time.monotonic()
                say(text)

    def watch() -> None:
        while not done.wait(min(STILL_RUNNING_S, 5.0)):
            with lock:
                if last[0] and time.monotonic() - last[1] >= STILL_RUNNING_S:
                    last[1] = time.monotonic()
                    say(f"{last[0]} (still running)")

    watcher = threading.Thread(target=watch, name="edgekit-progress", daemon=True)
    watcher.start()
    try:
        yield line
    finally:
        done.set()
        watcher.join()
    say("finished")
