"""Writing an output directory atomically: all of it or none of it, never clobbering a user's edits."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from dsparsers.errors import UsageError
from dsparsers.generation.manifest import MANIFEST, load_manifest_dict

#: entries of an existing output directory that a rewrite carries over (build trees, engines, notes)
_GENERATED_MARK = "files"


def sha256_text(content: str | bytes) -> str:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


def _recorded_files(target: Path) -> dict[str, str] | None:
    manifest = load_manifest_dict(target)
    files = manifest.get(_GENERATED_MARK) if manifest is not None else None
    return dict(files) if isinstance(files, dict) else None


def _check_overwrite(target: Path, files: dict[str, str | bytes], force: bool) -> dict[str, str]:
    """What the previous generation wrote (path -> sha256); refuses to replace edited or foreign files."""
    if not target.exists():
        return {}
    if not target.is_dir():
        raise UsageError(f"-o {target}: exists and is not a directory")
    recorded = _recorded_files(target)
    if recorded is None:
        if any(target.iterdir()) and not force:
            raise UsageError(f"-o {target}: directory is not empty and was not written by dsparsers "
                             "(use --force to write into it anyway)")
        return {}
    edited = []
    for name, digest in sorted(recorded.items()):
        path = target / name
        if path.is_file() and sha256_text(path.read_bytes()) != digest:
            edited.append(name)
    if edited and not force:
        raise UsageError(f"-o {target}: {', '.join(edited[:5])}{' ...' if len(edited) > 5 else ''} "
                         "changed since dsparsers wrote them (use --force to overwrite)")
    return recorded


def write_directory(target: Path, files: dict[str, str | bytes], *, force: bool = False) -> None:
    """Make ``target`` hold ``files`` (relative path -> content), atomically.

    Files are written into a temporary sibling directory which then replaces ``target`` in one
    rename; on any error the temporary directory is removed and ``target`` is left as it was.
    Entries of an existing ``target`` that the previous generation did not write (a build tree,
    engines, notes) are carried over.
    """
    target = Path(os.path.abspath(target))
    previous = _check_overwrite(target, files, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    carried: list[str] = []
    try:
        for name, content in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content, encoding="utf-8", newline="\n")
            else:
                path.write_bytes(content)
        retired = None
        if target.exists():
            generated_tops = {Path(n).parts[0] for n in list(previous) + list(files)}
            for entry in target.iterdir():
                if entry.name not in generated_tops and entry.name != MANIFEST:
                    os.rename(entry, staging / entry.name)
                    carried.append(entry.name)
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, retired / "tree")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp made it private; the output is an ordinary directory
        os.rename(staging, target)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    except BaseException:
        for name in carried:  # give the user's entries back before discarding the staging tree
            if (staging / name).exists() and target.is_dir():
                os.rename(staging / name, target / name)
        shutil.rmtree(staging, ignore_errors=True)
        raise
