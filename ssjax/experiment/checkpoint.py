"""Verified checkpoints of a training state (a pytree of arrays) plus a JSON meta, kept by orbax.

orbax's ``CheckpointManager`` (synchronous) saves, lists, commits atomically and retains; ssjax
adds an integrity manifest, template checks and ``fallback``. On disk (``ssjax-checkpoint-2``)::

    directory/
      step_00000042/            one checkpoint: an orbax step of three items
        state/                  orbax PyTree (OCDBT) of the non-empty leaves, as a nested dict
                                keyed by pytree path: {"weights": {"0": ...}, "rule": {...}}
        meta/metadata           the meta dict (JSON)
        manifest/metadata       format, step, the meta's sha256; per leaf its path (keystr), key
                                in state/, shape, dtype and sha256 of its bytes; its own sha256
        _CHECKPOINT_METADATA, commit_success.txt      orbax's bookkeeping
      step_00000043.orbax-checkpoint-tmp/   a save in progress or killed: unlisted, then removed
      .trash/                   retention renames a step here, then deletes it
      corrupt-step_00000041-<hex>/   a corrupt step that a resumed run saved again, kept aside

Atomicity: orbax writes the three items inside ``step_<n>.orbax-checkpoint-tmp`` and renames it
to ``step_<n>`` last. The manifest is an item, so a kill leaves no ``step_<n>`` or one with its
manifest; a ``step_<n>`` without a valid one is damaged, hence corrupt, never skipped. ``save``
returns after the commit, an fsync of the step and ``directory`` (before retention deletes
anything; orbax does not fsync) and a read-back. Retention renames a step into ``.trash/``
before deleting it, so no half-deleted step is left either.

Integrity: a step verifies when the manifest matches its sha256, the meta its sha256, and each
leaf orbax decodes its shape, dtype and sha256; else it is corrupt: restore raises, naming step
and cause, or with ``fallback=True`` takes the newest older step that verifies. A template whose
paths, shapes or dtypes differ is a configuration error, raised even with fallback. Format 1's
per-file hashes are gone: leaf and meta hashes cover every byte restore returns, and file hashes
could only be in the atomic step via a hook into orbax's finalisation (its deprecated
``temporary_path_class``); so a damaged file that restore does not read is ignored.

Retention, an orbax ``PreservationPolicy``, keeps the newest ``keep`` steps that verify (each read
back once per process, the new one too) and every step that does not: a save broken on disk
never costs an older good one (and ``save`` raises). One writer per directory is assumed; a
second writer's deletions make retention warn, not fail.

Paths: etils' ``Path.glob`` puts the directory into ``glob.glob``'s pattern, so orbax's OCDBT
merge (``directory.glob("ocdbt.process_*")``) matches nothing under ``[...]`` and is skipped
silently; tensorstore's file kvstore takes ``\\`` for ``/`` and writes the arrays elsewhere.
So orbax gets a directory containing ``[ * ? \\`` as ``/proc/self/fd/<n>``, a descriptor open on
it (Linux; refused where there is no /proc).

Several processes (``jax.distributed``): a ``Checkpointer`` is used by one process alone (the
runner's primary, on the state gathered to its host with ``process_allgather``): orbax is told
so (``MultiprocessingOptions(primary_host=me, active_processes={me})``), which skips its
cross-process barriers. orbax could also write each process's shards itself, but the manifest
hashes whole leaves and a checkpoint of whole arrays restores with any number of processes and
devices (the states are small: weights and traces per seed).

Format ``ssjax-checkpoint-1`` (``arrays/`` + ``manifest.json``) is not read: restore and
read_meta raise :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import contextlib
import functools
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

FORMAT = "ssjax-checkpoint-2"
OLD_FORMAT = "ssjax-checkpoint-1"  # arrays/ + manifest.json: refused
STATE, META, MANIFEST = "state", "meta", "manifest"  # the orbax items of a step
TRASH = ".trash"
_UNSAFE_PATH = re.compile(r"[\[*?\\]")  # glob magic for etils, a separator for tensorstore


class CheckpointError(RuntimeError):
    """A checkpoint cannot be saved or restored; the message names the directory, step or leaf."""


class _Corrupt(Exception):
    """Internal: the checkpoint of one step fails verification (the message says why)."""


def _sha256(obj) -> str:
    """sha256 of bytes, of an array's bytes, or of an object's canonical JSON."""
    if isinstance(obj, np.ndarray):
        obj = np.ascontiguousarray(obj).tobytes()
    elif not isinstance(obj, bytes):
        obj = json.dumps(obj, sort_keys=True).encode()
    return hashlib.sha256(obj).hexdigest()


def _as_array(x):
    # python scalars follow jax's dtype rules, so saved and template dtypes agree
    return x if hasattr(x, "shape") and hasattr(x, "dtype") else jnp.asarray(x)


def _flatten(tree):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return [(p, jax.tree_util.keystr(p), _as_array(x)) for p, x in leaves], treedef


def _key(path) -> list[str]:
    """A leaf's key in the saved nested dict: its path entries' names, indices or dict keys."""
    attrs = ("name", "key", "idx")  # GetAttrKey, DictKey / FlattenedIndexKey, SequenceKey
    names = [str(next((getattr(e, a) for a in attrs if hasattr(e, a)), e)) for e in path]
    return names or ["value"]  # the state is a single array


def _nest(leaves) -> dict:
    """The nested dict of ``[(keystr, key, value)]``; raises CheckpointError if two keys clash."""
    root: dict = {}
    for path, key, a in leaves:
        node = root
        for k in key[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                break
        if not isinstance(node, dict) or key[-1] in node:
            raise CheckpointError(f"leaf {path}: its key {key} collides with another leaf's")
        node[key[-1]] = a
    return root


class _KeepNewestVerified(ocp.checkpoint_managers.PreservationPolicy):
    """orbax retention: the newest ``keep`` steps that verify, and every step that does not."""

    def __init__(self, owner: Checkpointer):
        self.owner = owner

    def should_preserve(self, checkpoints, *, context):
        self.owner._durable()  # orbax calls this after its commit, before deleting anything
        preserve, good = [], 0
        for info in reversed(checkpoints):
            ok = self.owner._problem(info.step) is None
            good += ok
            preserve.append(not ok or good <= self.owner.keep)
        return preserve[::-1]


class Checkpointer:
    """Numbered checkpoints in ``directory`` (created on the first save); keeps the newest ``keep``
    that verify, never deleting one that fails verification (left for inspection)."""

    def __init__(self, directory, keep: int = 3):
        if not (isinstance(keep, int) and keep >= 1):
            raise ValueError(f"Checkpointer keep must be an int >= 1, got {keep!r}")
        self.directory = Path(directory).absolute()  # orbax refuses relative paths
        self.keep = keep
        self._verified: set[int] = set()  # steps this process has verified (retention cache)
        self._saving: int | None = None  # the step save() is writing, until it is fsynced
        self._reader = None  # the open reading CheckpointManager, shared by nested calls

    def path(self, step: int) -> Path:
        """The folder of checkpoint ``step`` (``directory/step_<8 digits>``; may not exist)."""
        return self.directory / f"step_{step:08d}"

    @contextlib.contextmanager
    def _manager(self, write: bool = False):
        """An orbax CheckpointManager on ``directory``, closed after use; readers are shared."""
        if not write and self._reader is not None:
            yield self._reader
            return
        fd, where = None, self.directory
        if _UNSAFE_PATH.search(str(where)):  # see the module docstring (Paths)
            if not os.path.isdir("/proc/self/fd"):
                raise CheckpointError(f"orbax cannot use {where} ([ * ? \\) on this platform")
            fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
            where = Path(f"/proc/self/fd/{fd}")
        more = {}
        if jax.distributed.is_initialized() and jax.process_count() > 1:  # module docstring
            me = jax.process_index()
            more["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
                primary_host=me, active_processes={me}
            )
        options = ocp.CheckpointManagerOptions(
            step_prefix="step",
            step_format_fixed_length=8,
            enable_async_checkpointing=False,  # save returns after orbax's commit
            create=False,
            save_root_metadata=False,
            lightweight_initialize=True,
            # a reader (never saving or deleting) must not clean up: it would delete a save in
            # flight; read_only=True would do, but logs a warning per manager
            cleanup_tmp_directories=write,
            todelete_subdir=TRASH,
            preservation_policy=_KeepNewestVerified(self) if write else None,
            **more,
        )
        try:
            with ocp.CheckpointManager(where, options=options) as mngr:
                self._reader = None if write else mngr
                yield mngr
        finally:
            self._reader = None
            if fd is not None:
                os.close(fd)

    def steps(self) -> list[int]:
        """Steps of the committed checkpoints, ascending, as orbax lists them (a save in progress
        is not listed; a listed step may still fail verification, which restore reports)."""
        if not self.directory.is_dir():
            return []
        with self._manager() as mngr:
            return sorted(mngr.all_steps())

    def latest(self) -> int | None:
        """The newest committed step, or None when there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state, meta: dict) -> None:
        """Write ``state`` and ``meta`` as checkpoint ``step``; returns once it is committed,
        fsynced, read back and verified, and retention is done. Raises CheckpointError if the step
        exists (and verifies), meta is not JSON-able, a leaf is a typed PRNG key, or the save
        fails or does not verify (older checkpoints are then kept)."""
        if not (isinstance(step, (int, np.integer)) and step >= 0):
            raise CheckpointError(f"checkpoint step must be an int >= 0, got {step!r}")
        step = int(step)
        try:
            meta_json = json.dumps(meta, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint meta for step {step} is not JSON-able: {e}") from e
        records, arrays = [], []
        for p, path, x in _flatten(state)[0]:
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                raise CheckpointError(
                    f"leaf {path} is a typed PRNG key; save jax.random.key_data(key) instead"
                )
            a, key = np.asarray(x), _key(p)
            records.append({"path": path, "key": key, "shape": list(a.shape),
                            "dtype": a.dtype.name, "sha256": _sha256(a)})  # fmt: skip
            if a.size:  # orbax refuses zero-size arrays: those live in the manifest only
                arrays.append((path, key, a))
        manifest = {"format": FORMAT, "step": step, "meta_sha256": _sha256(meta_json.encode()),
                    "leaves": records}  # fmt: skip
        manifest["sha256"] = _sha256(manifest)
        items = ocp.args.Composite(
            **{
                STATE: ocp.args.PyTreeSave(_nest(arrays)),
                META: ocp.args.JsonSave(json.loads(meta_json)),
                MANIFEST: ocp.args.JsonSave(manifest),
            }
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.directory / TRASH, ignore_errors=True)  # a killed deletion's debris
        final = self.path(step)
        if final.exists():
            if self._problem(step) is None:
                raise CheckpointError(
                    f"checkpoint step {step} already exists at {final}; refusing to overwrite it"
                )
            # a resumed run (after --fallback-checkpoint) reaches the corrupt step again: keep
            # the corrupt one for inspection under another name, out of orbax's sight
            aside = self.directory / f"corrupt-{final.name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, aside)
            warnings.warn(f"moved corrupt checkpoint {final} to {aside}", stacklevel=2)
        self._verified.discard(step)
        self._saving = step
        try:
            with self._manager(write=True) as mngr:
                mngr.save(step, args=items, force=True)  # force: also below an existing step
            self._durable()
        except Exception as e:
            if self._problem(step) is not None:  # not committed (or broken): the save failed
                raise CheckpointError(
                    f"could not save checkpoint step {step} in {self.directory}: "
                    f"{type(e).__name__}: {e}"
                ) from e
            warnings.warn(  # committed; only retention failed (e.g. a second writer deleting)
                f"checkpoint step {step} saved in {self.directory}, but removing old ones "
                f"failed ({type(e).__name__}: {e}); they are left on disk",
                stacklevel=2,
            )
        finally:
            self._saving = None
        shutil.rmtree(self.directory / TRASH, ignore_errors=True)
        problem = self._problem(step)
        if problem is not None:
            raise CheckpointError(
                f"checkpoint step {step} was written to {final} but does not verify ({problem}); "
                "older checkpoints are kept"
            )

    def _durable(self) -> None:
        """fsync the step being saved and ``directory`` (a rename is only as good as its data)."""
        if self._saving is not None and self.path(self._saving).is_dir():
            final = self.path(self._saving)
            for f in [*final.rglob("*"), final, self.directory]:
                fd = os.open(f, os.O_RDONLY)  # directories too: fsync persists their entries
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self._saving = None

    def _problem(self, step: int) -> str | None:
        """Why ``step`` does not verify, or None when it does (read back once per process)."""
        if step not in self._verified:
            try:
                with self._manager():
                    self._read_verified(step, self._read_manifest(step)[0])
            except (_Corrupt, CheckpointError) as e:  # CheckpointError: an old format
                return str(e)
            self._verified.add(step)
        return None

    def _read_manifest(self, step: int) -> tuple[dict, dict]:
        """The verified manifest and meta of ``step``; raises _Corrupt, or CheckpointError for
        an old format."""
        folder = self.path(step)
        if not (folder / MANIFEST).is_dir():
            if (folder / "manifest.json").is_file() and (folder / "arrays").is_dir():
                raise CheckpointError(
                    f"checkpoint step {step} in {self.directory} is in format "
                    f"{OLD_FORMAT!r}, which this version ({FORMAT}) does not read; resume that "
                    "run with the ssjax version that wrote it, or start a new workdir"
                )
            raise _Corrupt(f"no {MANIFEST} in {folder}")
        try:
            with self._manager() as mngr:
                restore = {MANIFEST: ocp.args.JsonRestore(), META: ocp.args.JsonRestore()}
                got = mngr.restore(step, args=ocp.args.Composite(**restore))
            m, meta = dict(got[MANIFEST]), got[META]
            sealed = _sha256({k: v for k, v in m.items() if k != "sha256"}) == m["sha256"]
            meta_ok = _sha256(meta) == m["meta_sha256"]
        except Exception as e:  # any failure to read these small JSON items is corruption
            raise _Corrupt(f"unreadable {MANIFEST} or {META}: {type(e).__name__}: {e}") from e
        if not sealed:
            raise _Corrupt(f"{MANIFEST} checksum mismatch")
        if m.get("format") != FORMAT or m.get("step") != step:
            raise _Corrupt(f"{MANIFEST} has format {m.get('format')!r}, step {m.get('step')!r}")
        if not meta_ok:
            raise _Corrupt(f"{META} checksum mismatch")
        return m, meta

    def _check_template(self, step: int, manifest: dict, expected: list) -> None:
        saved = manifest["leaves"]
        for i in range(max(len(saved), len(expected))):
            s = saved[i] if i < len(saved) else None
            e = expected[i] if i < len(expected) else None
            s_desc = f"{s['path']} {tuple(s['shape'])} {s['dtype']}" if s else "no leaf"
            e_desc = f"{e[1]} {tuple(e[2].shape)} {np.dtype(e[2].dtype).name}" if e else "no leaf"
            if s_desc != e_desc:
                raise CheckpointError(
                    f"checkpoint step {step} in {self.directory} does not match the template at "
                    f"leaf {e[1] if e else s['path'] if s else None}: checkpoint has {s_desc}, "
                    f"expected {e_desc} "
                    f"(leaf {i}; {len(saved)} leaves saved, {len(expected)} expected); was it "
                    "written with a different configuration (e.g. network size)?"
                )

    def _read_verified(self, step: int, manifest: dict) -> list[np.ndarray]:
        """All leaves of ``step`` on the host, after checking every leaf's shape, dtype, sha256."""
        records, host = manifest["leaves"], {}
        as_np = ocp.RestoreArgs(restore_type=np.ndarray)
        stored = [(r["path"], r["key"], as_np) for r in records if np.prod(r["shape"])]
        if stored:
            try:
                with self._manager() as mngr:
                    restore = ocp.args.PyTreeRestore(restore_args=_nest(stored))
                    host = mngr.restore(step, args=ocp.args.Composite(**{STATE: restore}))[STATE]
            except Exception as e:  # any decoding failure is corruption
                raise _Corrupt(f"orbax could not read {STATE}: {type(e).__name__}: {e}") from e
        out = []
        for r in records:
            if not np.prod(r["shape"]):
                a = np.zeros(r["shape"], r["dtype"])
            else:
                try:
                    a = np.asarray(functools.reduce(lambda t, k: t[k], r["key"], host))
                except (KeyError, TypeError) as e:
                    raise _Corrupt(f"leaf {r['path']} missing from {STATE}") from e
            if (list(a.shape), a.dtype.name) != (r["shape"], r["dtype"]):
                raise _Corrupt(f"leaf {r['path']} decoded as {a.shape} {a.dtype}")
            if _sha256(a) != r["sha256"]:
                raise _Corrupt(f"checksum mismatch in leaf {r['path']}")
            out.append(a)
        return out

    def _load(self, step: int, expected: list) -> tuple[list, dict]:
        with self._manager():
            manifest, meta = self._read_manifest(step)
            self._check_template(step, manifest, expected)  # a mismatch is not corruption
            host = self._read_verified(step, manifest)
        out = []
        for r, a in zip(manifest["leaves"], host, strict=True):
            x = jax.device_put(a)  # default device; the caller may reshard
            if x.dtype != a.dtype:
                raise CheckpointError(
                    f"leaf {r['path']} of step {step} is {a.dtype} but jax made it {x.dtype}; "
                    "enable jax_enable_x64 to restore 64-bit checkpoints"
                )
            out.append(x)
        return out, meta

    def restore(self, template, step: int | None = None, *, fallback: bool = False):
        """Load checkpoint ``step`` (newest by default) into ``template``'s structure.

        Args:
            template: a pytree with the saved structure, shapes and dtypes (e.g. a fresh state).
            step: the step to restore; None for the newest.
            fallback: if the step is corrupt, restore the newest older step that verifies, with
                a warning naming the skipped steps (which stay on disk).

        Returns ``(step, state, meta)``; ``state`` has jax arrays bit-identical to those saved.
        Raises CheckpointError: no template, no such step, a corrupt step (without fallback, or
        none verifies), an old format, or a template whose paths, shapes or dtypes differ.
        """
        if template is None:
            raise CheckpointError(
                "Checkpointer.restore needs a template: pass a pytree with the saved structure, "
                "shapes and dtypes (e.g. the freshly initialised state)"
            )
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
                self._verified.discard(s)  # corrupted since this process verified it
                if not fallback:
                    hint = (
                        "restore with fallback=True (CLI flag --fallback-checkpoint) to use step "
                        f"{candidates[1]} instead"
                        if len(candidates) > 1
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
        """The meta dict saved with ``step`` (newest by default), checked against the manifest;
        arrays are not read. Raises CheckpointError if there is no such step or it is corrupt."""
        if step is None:
            step = self.latest()
            if step is None:
                raise CheckpointError(f"no complete checkpoint in {self.directory}")
        if step not in self.steps():
            raise CheckpointError(f"no complete checkpoint step {step} in {self.directory}")
        try:
            return self._read_manifest(step)[1]
        except _Corrupt as e:
            raise CheckpointError(f"checkpoint step {step} in {self.directory}: {e}") from e
