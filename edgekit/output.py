"""The sink: what a command prints goes to stdout (a rich table, a rendered format, or JSON), everything
else to stderr (notes, errors, progress: a spinner or bar on a terminal, plain timed lines elsewhere).
What the tables and formats say is made in ``edgekit.report``; this module only prints it and writes files."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

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
    failure (a full disk, Ctrl-C) the temporary file is removed, so are the folders made for it, and
    ``path`` is left as it was. A ``path`` that is a symbolic link is written where it leads."""
    import tempfile
    from pathlib import Path

    from edgekit.errors import EdgekitError

    path = Path(path)
    check_writable(path)
    if path.is_symlink():
        path = path.resolve()
    made = _missing_folders(path.parent)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        tmp = made = None
    except OSError as e:
        raise EdgekitError(f"cannot write {path}: {no_room(e) or e.strerror or e}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        for folder in made or ():  # the deepest first: an empty folder left by a failed write goes
            try:
                folder.rmdir()
            except OSError:
                break


def _missing_folders(folder) -> list:
    """``folder`` and those above it that do not exist yet, the deepest first."""
    missing = []
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def check_writable(path) -> None:
    """Refuse, before any work, a file destination that cannot be written: a folder, a path under a
    file, a read-only file or folder."""
    from pathlib import Path

    from edgekit.errors import EdgekitError

    path = Path(path)
    if path.is_dir():
        raise EdgekitError(f"cannot write {path}: it is a folder; name a file")
    if path.exists() and not path.is_file():  # replaced by a file, /dev/null would be gone
        raise EdgekitError(f"cannot write {path}: it is not a regular file (a device, a pipe or a socket); "
                           "name a file")
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


# ----------------------------------------------------------------------------- the paths of a command


@dataclass(frozen=True)
class Read:
    """A path a command reads: an artifact or model folder, a model, config, result or text file.
    ``what`` names it as the user gave it: "the artifact", "--eval-text", "[baseline] results"."""

    what: str
    path: object  # a path or a string; None: not given (nothing to check)
    # a folder whose files the command reads (a results folder) but where a new file of its own may go
    # (a report beside the results): only an output onto a file already in it is refused
    shared: bool = False


@dataclass(frozen=True)
class Write:
    """A path a command writes: a file (a result, a report), or a ``folder`` it writes into (results,
    a cache) or makes whole (an artifact: ``replaces``, what ``--overwrite`` deletes first)."""

    what: str  # "-o", "--summary", "[reports] junit", "the sweep's output folder"
    path: object
    folder: bool = False
    replaces: bool = False


def check_paths(reads, writes) -> None:
    """The one rule for every path a command writes, checked before any work (every command that
    writes declares what it reads and writes here):

    - every path names something (an empty string names nothing) and resolves: a symbolic link is
      followed, one that loops is refused, and so is one an output leads through to nothing;
    - every output can be written (``check_writable``, ``check_folder``);
    - no output is, or is inside, an input of the same command: nothing it reads is overwritten;
    - no input lies inside a folder an output replaces (``--overwrite``): nothing it reads is deleted;
    - no two outputs are one path, nor one inside a folder another replaces."""
    from edgekit.errors import EdgekitError

    reads = [(r, real(r.what, r.path)) for r in reads if r.path is not None]
    writes = [(w, real(w.what, w.path)) for w in writes if w.path is not None]
    for w, _ in writes:
        _leads_somewhere(w)
        if w.folder:
            check_folder(w.path, f"cannot write {w.what} {w.path}")
        else:
            check_writable(w.path)
    for i, (w, wp) in enumerate(writes):
        for r, rp in reads:
            if wp == rp:
                harm = "writing into it would change it" if w.folder else "writing it would destroy it"
                raise EdgekitError(f"{w.what} {w.path} is {r.what} {r.path}, which this command reads: {harm}; "
                                   "name another path")
            if wp.is_relative_to(rp) and rp.is_dir() and not (r.shared and not w.folder and not wp.exists()):
                raise EdgekitError(f"{w.what} {w.path} is inside {r.what} {r.path}, which this command reads; "
                                   "name a path outside it" + (" or a new file" if r.shared else ""))
            if w.replaces and rp.is_relative_to(wp):
                raise EdgekitError(f"{r.what} {r.path} is inside {w.what} {w.path}, which --overwrite would replace "
                                   "(deleting what this command reads); name another folder")
        for other, op in writes[:i]:
            shared = w.folder and other.folder and not (w.replaces or other.replaces)  # two writing into one folder
            if wp == op and not shared:
                raise EdgekitError(f"{other.what} and {w.what} both write {w.path}; name a path for each")
            for outer, inner, a, b in ((other, w, op, wp), (w, other, wp, op)):
                if outer.replaces and b.is_relative_to(a):
                    raise EdgekitError(f"{inner.what} {inner.path} is inside {outer.what} {outer.path}, which this "
                                       "command replaces; name a path outside it")


def real(what: str, path):
    """``path`` with every symbolic link followed (a Path, made absolute); refused in one line where
    it is empty or a link loops."""
    from pathlib import Path

    from edgekit.errors import EdgekitError

    text = os.fspath(path)
    if text in ("", b""):
        raise EdgekitError(f"{what}: an empty path names no file or folder")
    try:
        return Path(text).resolve()
    except (RuntimeError, OSError) as e:  # Python 3.11: RuntimeError("Symlink loop ..."); later ones: OSError
        import errno

        why = ("leads back to itself (a loop)" if "loop" in str(e).lower() or getattr(e, "errno", None) == errno.ELOOP
               else f"cannot be followed ({getattr(e, 'strerror', None) or e})")
        raise EdgekitError(f"{what} {path}: a symbolic link on it {why}; remove it or name another path") from None


def _leads_somewhere(w: Write) -> None:
    """Refuse an output path through a symbolic link to nothing: a folder would be made where the
    link points, or the link replaced, never what the user meant."""
    from pathlib import Path

    from edgekit.errors import EdgekitError

    p = Path(os.fspath(w.path))
    for part in (p, *p.parents):
        if part.is_symlink() and not part.exists():
            raise EdgekitError(f"{w.what} {w.path}: {part} is a symbolic link to {os.readlink(part)}, which does not "
                               "exist; make it, or name another path")


def no_room(error: BaseException) -> str | None:
    """What a write failed on where the disk (or a quota) has no room, or the file system is read-only:
    the OS's words (``No space left on device``); None for any other error. Reads the forms libraries
    give it in: an ``OSError`` with its errno, numpy's short write ("65536 requested and 49080
    written", no errno), an error that lists others in its text (``shutil.Error`` of a copy), and the
    errors it was raised from."""
    import errno
    import re

    rooms = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
    seen, stack = set(), [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        code = getattr(e, "errno", None)
        if code in rooms:
            return os.strerror(code)
        text = str(e)
        if re.search(r"\b\d+ requested and \d+ written\b", text):  # numpy's tofile on a full disk
            return os.strerror(errno.ENOSPC)
        for code in rooms:
            if os.strerror(code) in text or f"[Errno {code}]" in text:
                return os.strerror(code)
        stack += [e.__cause__, e.__context__]
    return None


def room_problem(out, error: BaseException) -> str | None:
    """The one line for an ``error`` that ``no_room`` knows, while writing ``out``: the folder that has
    no room named, ``out``'s or the temporary folder (TMPDIR, where libraries write their scratch
    files) when that one is full and ``out``'s is not; None for any other error."""
    import tempfile
    from pathlib import Path

    reason = no_room(error)
    if reason is None:
        return None
    scratch = Path(tempfile.gettempdir())
    if _in_scratch(Path(out), scratch, error):
        return (f"the temporary folder {scratch} has no room ({reason}), not {out}; free some space there or set "
                "TMPDIR to a folder with room, and run it again")
    return f"cannot write {out}: {reason}"


def _in_scratch(out, scratch, error) -> bool:
    from pathlib import Path

    name = getattr(error, "filename", None)
    if isinstance(name, (str, bytes, os.PathLike)) and os.fspath(name):
        try:
            return Path(os.fsdecode(name)).resolve().is_relative_to(scratch.resolve())
        except (OSError, RuntimeError):
            return False
    here = out
    while not here.exists() and here != here.parent:
        here = here.parent
    try:
        (out_dev, out_free), (tmp_dev, tmp_free) = _room(here), _room(scratch)
    except OSError:
        return False
    return out_dev != tmp_dev and tmp_free < out_free


def _room(folder) -> tuple[int, int]:
    """The device of ``folder``'s file system and the bytes free on it."""
    import shutil

    return os.stat(folder).st_dev, shutil.disk_usage(folder).free


def keep(path, text: str, name: str | None = None) -> tuple[str | None, str | None]:
    """Write ``text`` to ``path``; where that fails, to a file in the temporary folder
    (``save_somewhere``), so nothing measured is lost. Returns (where it is, None), or (where it is
    or None, why ``path`` failed)."""
    from pathlib import Path

    from edgekit.errors import EdgekitError

    try:
        write_file(path, text)
        return str(path), None
    except EdgekitError as e:
        return save_somewhere(name or Path(path).name, text), str(e)


def save_somewhere(name: str, text: str) -> str | None:
    """Keep ``text`` that could not be written where it was asked for: a file in the temporary folder
    (its path), or None where even that fails."""
    import tempfile

    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="edgekit-", suffix=f"-{name}")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return tmp
    except OSError:
        if tmp is not None:
            with suppress(OSError):
                os.unlink(tmp)
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
