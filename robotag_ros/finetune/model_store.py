"""A folder of model artifacts with atomic ``current`` and ``candidate`` pointers.

Layout: ``<stamp>_<tag>.safetensors`` + ``.yaml`` artifacts (timestamped, never overwritten or
deleted here, so every previous model stays available), ``current`` (a text file naming the
artifact the node serves), ``candidate`` (the newest fine-tuned artifact awaiting the node's
verdict) and ``decisions.jsonl`` (one line per accept/reject, with the scores). Pointers are
rewritten atomically (temporary file + rename): a reader sees the old name or the new one.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from robotag_ros.model.artifact import artifact_paths
from robotag_ros.atomic_io import atomic_write_text

CURRENT = 'current'
CANDIDATE = 'candidate'
DECISIONS = 'decisions.jsonl'


class ModelStore:
    """Timestamped artifacts in ``root`` and the pointers that say which one is served."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def new_artifact_path(self, tag: str) -> Path:
        """A fresh artifact prefix ``<UTC stamp>_<tag>`` (sorts by creation time)."""
        stamp = datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')
        if not tag.replace('_', '').replace('-', '').isalnum():
            raise ValueError(f'artifact tag must be letters, digits, - or _, got {tag!r}')
        return self.root / f'{stamp}_{tag}'

    def import_artifact(self, source: str | os.PathLike, tag: str = 'initial') -> Path:
        """Copy an artifact (weights + sidecar) into the store; returns its new prefix."""
        target = self.new_artifact_path(tag)
        for src, dst in zip(artifact_paths(source), artifact_paths(target)):
            if not src.is_file():
                raise FileNotFoundError(f'artifact file not found: {src}')
            tmp = dst.with_name(f'.{dst.name}.tmp')
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        return target

    def artifacts(self) -> list[Path]:
        """Every complete artifact prefix in the store, oldest first."""
        return sorted(p.with_suffix('') for p in self.root.glob('*.safetensors')
                      if not p.name.startswith('.') and p.with_suffix('.yaml').is_file())

    def _read_pointer(self, name: str) -> Path | None:
        path = self.root / name
        if not path.is_file():
            return None
        target = path.read_text().strip()
        return self.root / target if target else None

    def _write_pointer(self, name: str, artifact: str | os.PathLike | None) -> None:
        if artifact is None:
            (self.root / name).unlink(missing_ok=True)
            return
        artifact = Path(artifact)
        if artifact.parent.resolve() != self.root.resolve():
            raise ValueError(f'{artifact} is not in the model store {self.root}')
        if not artifact_paths(artifact)[0].is_file():
            raise FileNotFoundError(f'artifact weights not found: {artifact_paths(artifact)[0]}')
        atomic_write_text(self.root / name, artifact.name + '\n')

    def current(self) -> Path | None:
        """The artifact the node serves (prefix), or None before the first one."""
        return self._read_pointer(CURRENT)

    def set_current(self, artifact: str | os.PathLike) -> None:
        self._write_pointer(CURRENT, artifact)

    def candidate(self) -> Path | None:
        """The fine-tuned artifact awaiting a verdict, or None."""
        return self._read_pointer(CANDIDATE)

    def set_candidate(self, artifact: str | os.PathLike | None) -> None:
        self._write_pointer(CANDIDATE, artifact)

    def record_decision(self, **fields) -> None:
        """Append one verdict (accepted or not, scores, artifacts) to decisions.jsonl."""
        fields.setdefault('time_unix_s', time.time())
        with open(self.root / DECISIONS, 'a') as stream:
            stream.write(json.dumps(fields, default=str) + '\n')

    def decisions(self) -> list[dict]:
        path = self.root / DECISIONS
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
