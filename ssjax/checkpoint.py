"""Atomic, verified checkpoints of a training state (a pytree of arrays) plus a small JSON meta.

On disk, one folder per run::

    directory/
      step_00000042/              one complete checkpoint
        arrays/                   orbax PyTree checkpoint (OCDBT) of the non-empty leaves, saved as
                                  a flat dict {"leaf_00000": ..., ...} in tree-flatten order
        manifest.json             written last: format, step, meta (+ its sha256), per leaf its
                                  path (jax.tree_util.keystr), shape, dtype and the sha256 of its
                                  bytes, and the sha256 of every file under arrays/
      .tmp-step_00000043-<hex>/   a save in progress (or killed): ignored, removed by the next save
      .trash-step_00000040-<hex>/ a checkpoint being deleted by retention: ignored, likewise

"Complete" has one definition: a folder named ``step_<digits>`` holding ``manifest.json``. A save
builds everything (orbax finalises its own temporary folder into ``arrays/``, then the manifest is
written) inside a ``.tmp-*`` folder, fsyncs it, and only then renames it to ``step_<n>``; a
rename is atomic, so a process killed at any moment leaves either no ``step_<n>`` or a complete
one. Deletion renames to ``.trash-*`` first for the same reason. Zero-size leaves (which orbax
refuses to save) live only in the manifest. One writer per directory is assumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

FORMAT = "ssjax-checkpoint-1"
MANIFEST = "manifest.json"
ARRAYS = "arrays"
_STEP_RE = re.compile(r"^step_(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be saved or restored; the message names the directory, step or leaf."""


class _Corrupt(Exception):
    """Internal: the checkpoint of one step fails verification (the message says why)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leaf_bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def _as_array(x):
    # python scalars follow jax's dtype rules, so saved and template dtypes agree
    return x if hasattr(x, "shape") and hasattr(x, "dtype") else jnp.asarray(x)


def _flatten(tree):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(p), _as_array(x)) for p, x in leaves], treedef


def _hash_files(root: Path) -> dict[str, str]:
    return {
        str(f.relative_to(root)): _sha256(f.read_bytes())
        for f in sorted(root.rglob("*"))
        if f.is_file()
    }


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # directories too: fsync persists their entries
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    # a rename is only as durable as the data it points to (power loss, not just SIGKILL)
    for f in [*root.rglob("*"), root]:
        _fsync(f)


class Checkpointer:
    """Numbered checkpoints in ``directory`` (created on the first save); keeps the newest ``keep``
    that verify, never deleting one that fails verification (left for inspection)."""

    def __init__(self, directory, keep: int = 3):
        if not (isinstance(keep, int) and keep >= 1):
            raise ValueError(f"Checkpointer keep must be an int >= 1, got {keep!r}")
        self.directory = Path(directory).absolute()  # orbax refuses relative paths
        self.keep = keep
        self._verified: set[int] = set()  # steps this process has verified (retention cache)

    def path(self, step: int) -> Path:
        """The folder of checkpoint ``step`` (``directory/step_<8 digits>``; may not exist)."""
        return self.directory / f"step_{step:08d}"

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, ascending (half-written saves are not listed)."""
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.iterdir():
            m = _STEP_RE.match(p.name)
            if m and (p / MANIFEST).is_file():
                found.append(int(m.group(1)))
        return sorted(found)

    def latest(self) -> int | None:
        """The newest complete step, or None when there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state, meta: dict) -> None:
        """Write ``state`` and ``meta`` as checkpoint ``step``; returns once it is on disk."""
        if not (isinstance(step, (int, np.integer)) and step >= 0):
            raise CheckpointError(f"checkpoint step must be an int >= 0, got {step!r}")
        step = int(step)
        final = self.path(step)
        if final.exists():
            if not self._is_corrupt(step):
                raise CheckpointError(
                    f"checkpoint step {step} already exists at {final}; refusing to overwrite it"
                )
            # a resumed run (after --fallback-checkpoint) reaches the corrupt step again: keep
            # the corrupt one for inspection under another name, out of steps()' sight
            aside = self.directory / f"corrupt-{final.name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, aside)
            warnings.warn(f"moved corrupt checkpoint {final} to {aside}", stacklevel=2)
        try:
            meta_json = json.dumps(meta, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint meta for step {step} is not JSON-able: {e}") from e
        leaves, _ = _flatten(state)
        host, records = {}, []
        for i, (path, x) in enumerate(leaves):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                raise CheckpointError(
                    f"leaf {path} is a typed PRNG key; save jax.random.key_data(key) instead"
                )
            a = np.asarray(x)
            records.append(
                {
                    "path": path,
                    "shape": list(a.shape),
                    "dtype": a.dtype.name,
                    "sha256": _sha256(_leaf_bytes(a)),
                }
            )
            if a.size:
                host[f"leaf_{i:05d}"] = x
        self.directory.mkdir(parents=True, exist_ok=True)
        self._clean_leftovers()
        tmp = self.directory / f".tmp-{final.name}-{uuid.uuid4().hex}"
        tmp.mkdir()
        if host:
            with ocp.PyTreeCheckpointer() as ckptr:  # synchronous: finalised when save returns
                ckptr.save(tmp / ARRAYS, host)
        else:
            (tmp / ARRAYS).mkdir()
        manifest = {
            "format": FORMAT,
            "step": step,
            "meta": json.loads(meta_json),
            "meta_sha256": _sha256(meta_json.encode()),
            "leaves": records,
            "files": _hash_files(tmp / ARRAYS),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _fsync_tree(tmp)
        os.rename(tmp, final)  # the commit point
        _fsync(self.directory)  # persist the rename itself
        self._retain(just_saved=step)

    def _is_corrupt(self, step: int) -> bool:
        try:
            self._read_verified(step, self._read_manifest(step))
        except _Corrupt:
            return True
        return False

    def _clean_leftovers(self) -> None:
        # debris of killed saves/deletions (single writer: nobody else is using them)
        for p in self.directory.iterdir():
            if p.name.startswith((".tmp-step_", ".trash-step_")):
                shutil.rmtree(p, ignore_errors=True)

    def _retain(self, just_saved: int) -> None:
        good = 0
        for s in reversed(self.steps()):
            if s != just_saved and s not in self._verified:
                try:  # full verification (reads the arrays), once per step and process
                    self._read_verified(s, self._read_manifest(s))
                except _Corrupt:
                    continue  # never delete a checkpoint that fails verification
                self._verified.add(s)
            good += 1
            if good > self.keep:
                trash = self.directory / f".trash-{self.path(s).name}-{uuid.uuid4().hex}"
                os.rename(self.path(s), trash)  # atomic: never a half-deleted step_<n>
                shutil.rmtree(trash, ignore_errors=True)

    def _read_manifest(self, step: int) -> dict:
        try:
            m = json.loads((self.path(step) / MANIFEST).read_text())
            meta_json = json.dumps(m["meta"], sort_keys=True)
            m["leaves"], m["files"]  # noqa: B018 (presence check)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _Corrupt(f"unreadable {MANIFEST}: {e}") from e
        if m.get("format") != FORMAT or m.get("step") != step:
            raise _Corrupt(f"{MANIFEST} has format {m.get('format')!r}, step {m.get('step')!r}")
        if _sha256(meta_json.encode()) != m.get("meta_sha256"):
            raise _Corrupt("meta checksum mismatch")
        return m

    def _verify_files(self, step: int, manifest: dict) -> None:
        root = self.path(step) / ARRAYS
        for rel, digest in manifest["files"].items():
            f = root / rel
            if not f.is_file():
                raise _Corrupt(f"missing file {f}")
            if _sha256(f.read_bytes()) != digest:
                raise _Corrupt(f"checksum mismatch in {f}")

    def _check_template(self, step: int, manifest: dict, expected: list) -> None:
        saved = manifest["leaves"]
        for i in range(max(len(saved), len(expected))):
            s = saved[i] if i < len(saved) else None
            e = expected[i] if i < len(expected) else None
            s_desc = f"{s['path']} {tuple(s['shape'])} {s['dtype']}" if s else "no leaf"
            e_desc = f"{e[0]} {tuple(e[1].shape)} {np.dtype(e[1].dtype).name}" if e else "no leaf"
            if s_desc != e_desc:
                name = e[0] if e else s["path"]
                raise CheckpointError(
                    f"checkpoint step {step} in {self.directory} does not match the template at "
                    f"leaf {name}: checkpoint has {s_desc}, expected {e_desc} "
                    f"(leaf {i}; {len(saved)} leaves saved, {len(expected)} expected); was it "
                    "written with a different configuration (e.g. network size)?"
                )

    def _read_verified(self, step: int, manifest: dict) -> list[np.ndarray]:
        """All leaves of ``step`` on the host, after checking every file and leaf checksum."""
        self._verify_files(step, manifest)
        records = manifest["leaves"]
        want = {f"leaf_{i:05d}" for i, r in enumerate(records) if np.prod(r["shape"]) > 0}
        host = {}
        if want:
            args = {k: ocp.RestoreArgs(restore_type=np.ndarray) for k in want}
            try:
                with ocp.PyTreeCheckpointer() as ckptr:
                    host = ckptr.restore(
                        self.path(step) / ARRAYS, args=ocp.args.PyTreeRestore(restore_args=args)
                    )
            except Exception as e:  # any decoding failure of verified files is still corruption
                raise _Corrupt(f"orbax could not read the arrays: {type(e).__name__}: {e}") from e
        out = []
        for i, r in enumerate(records):
            key = f"leaf_{i:05d}"
            a = np.asarray(host[key]) if key in want else np.zeros(r["shape"], r["dtype"])
            if (list(a.shape), a.dtype.name) != (r["shape"], r["dtype"]):
                raise _Corrupt(f"leaf {r['path']} decoded as {a.shape} {a.dtype}")
            # the file hashes cover the bytes on disk; this covers what was decoded from them
            if _sha256(_leaf_bytes(a)) != r["sha256"]:
                raise _Corrupt(f"checksum mismatch in leaf {r['path']}")
            out.append(a)
        return out

    def _load(self, step: int, expected: list) -> tuple[list, dict]:
        manifest = self._read_manifest(step)
        self._check_template(step, manifest, expected)  # a mismatch is not corruption: raise
        out = []
        for r, a in zip(manifest["leaves"], self._read_verified(step, manifest), strict=True):
            x = jax.device_put(a)  # default device; the caller may reshard
            if x.dtype != a.dtype:
                raise CheckpointError(
                    f"leaf {r['path']} of step {step} is {a.dtype} but jax made it {x.dtype}; "
                    "enable jax_enable_x64 to restore 64-bit checkpoints"
                )
            out.append(x)
        return out, manifest["meta"]

    def restore(self, template, step: int | None = None, *, fallback: bool = False):
        """Load checkpoint ``step`` (newest by default) into ``template``'s structure.

        Returns ``(step, state, meta)``; ``state`` has jax arrays bit-identical to those saved.
        A corrupt checkpoint raises :class:`CheckpointError`, unless ``fallback`` is set: then the
        newest older step that verifies is restored, with a warning naming the skipped steps (which
        stay on disk). A template whose paths, shapes or dtypes differ raises in either case.
        """
        steps = self.steps()
        if step is not None and step not in steps:
            raise CheckpointError(
                f"no complete checkpoint step {step} in {self.directory} (complete: {steps})"
            )
        candidates = [s for s in reversed(steps) if step is None or s <= step]
        if not candidates:
            raise CheckpointError(f"no complete checkpoint in {self.directory}")
        expected, treedef = _flatten(template)
        skipped = []
        for s in candidates:
            try:
                leaves, meta = self._load(s, expected)
            except _Corrupt as e:
                if not fallback:
                    older = candidates[1] if len(candidates) > 1 else None
                    hint = (
                        f"restore with fallback=True (CLI flag --fallback-checkpoint) to use step "
                        f"{older} instead"
                        if older is not None
                        else "there is no older checkpoint"
                    )
                    raise CheckpointError(
                        f"checkpoint step {s} in {self.directory} is corrupt ({e}); {hint}; the "
                        "corrupt checkpoint is left on disk"
                    ) from e
                skipped.append(f"{s} ({e})")
                continue
            if skipped:
                warnings.warn(
                    f"skipped corrupt checkpoint step(s) {'; '.join(skipped)} in {self.directory}; "
                    f"restored step {s} instead (the corrupt ones are left on disk)",
                    stacklevel=2,
                )
            return s, jax.tree_util.tree_unflatten(treedef, leaves), meta
        raise CheckpointError(
            f"no checkpoint in {self.directory} verifies; corrupt: {'; '.join(skipped)}"
        )

    def read_meta(self, step: int | None = None) -> dict:
        """The meta dict saved with ``step`` (newest complete by default); arrays are not read."""
        if step is None:
            step = self.latest()
            if step is None:
                raise CheckpointError(f"no complete checkpoint in {self.directory}")
        if step not in self.steps():
            raise CheckpointError(f"no complete checkpoint step {step} in {self.directory}")
        try:
            return self._read_manifest(step)["meta"]
        except _Corrupt as e:
            raise CheckpointError(f"checkpoint step {step} in {self.directory}: {e}") from e
