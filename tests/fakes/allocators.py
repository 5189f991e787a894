"""BlaveClaw-style allocator folders for tests: ``allocators/<name>/allocator.py`` under a root."""
from __future__ import annotations

from pathlib import Path


def write_blaveclaw_allocator(root: Path, name: str, source: str) -> Path:
    """Write ``root/allocators/<name>/allocator.py`` with ``source``; returns the file."""
    folder = root / "allocators" / name
    folder.mkdir(parents=True)
    path = folder / "allocator.py"
    path.write_text(source)
    return path
