"""Build verified reaction datasets in parallel through the ``concurrent.futures`` interface.

``build_dataset`` feeds candidates to an Executor (a local ``ProcessPoolExecutor`` by default,
a ``dask.distributed`` cluster when a scheduler address is given, or any Executor you pass),
keeps at most a few tasks in flight, and appends every finished candidate to a
:class:`~.store.ReactionStore` as soon as it returns. Killing the builder loses no finished
candidate; a restart on the same store skips what is done. Duplicates (the same reaction up to
atom relabelling, in either direction, see :func:`~.molgraph.reaction_key`) are recorded as
rejections with reason ``duplicate``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass
from pathlib import Path

from ase.calculators.calculator import Calculator

from .candidates import Candidate
from .molgraph import reaction_key
from .pipeline import GuessProvider, PipelineSettings, Rejected, verify_candidate
from .reaction import Reaction
from .store import ReactionStore

__all__ = ["BuildSummary", "build_dataset", "run_candidate", "make_executor"]

CalculatorFactory = Callable[[], Calculator]
_REACTANT_CACHE: dict = {}


@dataclass(frozen=True)
class BuildSummary:
    """What one ``build_dataset`` call did (this call only; the store holds the totals)."""

    accepted: int
    rejected: int
    skipped: int
    remaining: int
    seconds: float
    workers: int


def _describe(calculator: CalculatorFactory) -> str:
    describe = getattr(calculator, "describe", None)
    return describe() if callable(describe) else repr(calculator)


def _method(calculator: CalculatorFactory) -> str:
    return str(getattr(calculator, "method", None) or type(calculator).__name__)


def run_candidate(cand: Candidate, calculator: CalculatorFactory, settings, guesses=None) -> dict:
    """Verify one candidate in a worker; never raises. Returns a picklable result dict.

    Keys: ``id``, ``status``, ``kind``, ``group`` (the build-order group, see
    :func:`~.candidates.build_group`), ``seconds`` (wall), ``cpu_seconds`` (this process's CPU
    time, one thread, TS-guess provider included), ``finished`` (Unix time), and either
    ``reason``/``detail`` (rejected) or ``reaction`` (a :class:`Reaction`) and ``key``
    (accepted) with the ``route`` that reached the saddle (``neb``, ``planar`` or ``guess<k>``).
    With a ``guesses`` provider (see :func:`~.pipeline.verify_candidate`) also
    ``guess_provider`` (True), ``attempts`` and ``guess_cpu_seconds``.
    """
    from .calculators import software_versions
    from .candidates import build_group

    t0 = time.monotonic()
    c0 = time.process_time()
    kind = getattr(cand, "kind", "bond_edit")
    out: dict = {"id": cand.id, "seed": cand.seed, "family": cand.family, "kind": kind}
    if isinstance(cand, Candidate):
        out["group"] = build_group(cand)
    cache = _REACTANT_CACHE.setdefault(_describe(calculator), {})
    try:
        if hasattr(cand, "verify"):  # candidates that carry their own chain (the EMT surface tier)
            path = cand.verify(calculator, settings)
        else:
            path = verify_candidate(cand, calculator, settings, reactant_cache=cache, guesses=guesses)
    except Rejected as err:
        out.update(status="rejected", reason=err.reason, detail=err.detail[:300], **err.info)
    except MemoryError:
        out.update(status="rejected", reason="out_of_memory", detail="")
    except Exception as err:  # calculator crashes, SCF failures, optimiser blow-ups: skip, never crash the run
        name = type(err).__name__
        reason = "calculator_failed" if "Calculation" in name or "SCF" in str(err) else "error"
        tb = traceback.format_exc().strip().splitlines()[-1]
        out.update(status="rejected", reason=reason, detail=f"{name}: {err}"[:200] + f" | {tb[:100]}")
    else:
        out.update(_accepted(cand, path, calculator, settings, software_versions()))
        out["route"] = getattr(path, "route", "neb")
        if guesses is not None:
            out.update(attempts=list(path.attempts), guess_cpu_seconds=round(path.guess_seconds, 3))
    if guesses is not None:
        out["guess_provider"] = True
    out["seconds"] = round(time.monotonic() - t0, 3)
    out["cpu_seconds"] = round(time.process_time() - c0, 3)
    out["finished"] = round(time.time(), 1)
    return out


def _accepted(cand, path, calculator, settings, versions: dict) -> dict:
    """The record fields and Reaction of a verified path."""
    from .candidates import edit_family, mapped_smiles
    from .molgraph import VALENCE

    numbers = [int(z) for z in path.reactant.numbers]
    fam_broken = sorted(path.r_graph - path.p_graph)
    fam_formed = sorted(path.p_graph - path.r_graph)
    kind = path.kind if isinstance(cand, Candidate) else "surface"
    if kind != "bond_edit" or not (path.r_graph or path.p_graph):
        family = cand.family  # template, rotation and inversion labels (and the EMT tier's)
    else:
        family = edit_family(numbers, fam_broken, fam_formed)
    smiles = ""
    if (path.r_graph or path.p_graph) and all(int(z) in VALENCE for z in numbers):
        rs, ps = mapped_smiles(numbers, path.r_graph), mapped_smiles(numbers, path.p_graph)
        smiles = f"{rs}>>{ps}" if rs and ps else ""
    if path.origin == "intended":
        rid = cand.id
    elif path.r_graph == path.p_graph:  # a conformer pair other than the enumerated one
        rid = f"{cand.id}~discovered"
    else:
        rid = f"{cand.id}~{'.'.join(f'{i}-{j}' for i, j in fam_broken)}/{'.'.join(f'{i}-{j}' for i, j in fam_formed)}"
    reaction = Reaction(
        id=rid, reactant=path.reactant, transition_state=path.transition_state, product=path.product,
        energies=path.energies, imaginary_frequency=path.imaginary_frequency, smiles=smiles,
        family=family, method=_method(calculator),
        software=";".join(f"{k}={v}" for k, v in versions.items()),
        settings=settings.as_string(), origin=path.origin, source=cand.id,
        kind=kind, key_coordinate=path.key_coordinate,
    )
    return dict(
        status="accepted", reaction=reaction,
        key=getattr(cand, "dedup_key", None) or reaction_key(numbers, path.r_graph, path.p_graph),
        barrier_ev=reaction.barrier, imag_freq_cm1=path.imaginary_frequency, origin=path.origin,
        family=family, formula=reaction.formula, neb_converged=path.neb_converged, kind=kind,
        n_atoms=len(numbers), key_coordinate=reaction.key_coordinate,
    )


def _candidate_key(cand) -> str:
    """The reaction key a candidate would be stored under if verified as intended."""
    key = getattr(cand, "dedup_key", None)
    return key if key is not None else reaction_key(cand.numbers, cand.r_graph, cand.p_graph)


def _init_worker() -> None:
    # one thread per worker: the builder's parallelism is across candidates
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def make_executor(*, max_workers: int = 1, scheduler_address: str | None = None) -> cf.Executor:
    """A ``ProcessPoolExecutor`` (default) or a dask ``Client`` for ``scheduler_address``.

    ``dask.distributed.Client`` implements the ``concurrent.futures.Executor`` protocol through
    ``client.get_executor()``; ``build_dataset`` closes that client (not the cluster) when done.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    if scheduler_address:
        try:
            from dask.distributed import Client
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("a scheduler address needs dask.distributed: pip install 'sciflow[distributed]'") from err
        client = Client(scheduler_address)
        return client.get_executor()
    import multiprocessing as mp

    return cf.ProcessPoolExecutor(max_workers=max_workers, mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker)


def _shutdown(pool: cf.Executor) -> None:
    try:
        pool.shutdown(wait=False, cancel_futures=True)
    except TypeError:  # dask's ClientExecutor has no cancel_futures
        pool.shutdown(wait=False)
    client = getattr(pool, "_client", None)
    if client is not None:  # the Client make_executor opened for a scheduler address
        client.close()


def build_dataset(
    candidates: Iterable[Candidate],
    store: ReactionStore | str | Path,
    *,
    calculator: CalculatorFactory,
    settings=None,
    executor: cf.Executor | None = None,
    max_workers: int = 1,
    scheduler_address: str | None = None,
    max_candidates: int | None = None,
    max_accepted: int | None = None,
    time_budget: float | None = None,
    progress: bool = True,
    on_result: Callable[[dict], None] | None = None,
    guesses: GuessProvider | None = None,
) -> BuildSummary:
    """Verify candidates in parallel and append each result to ``store`` as it finishes.

    Parameters
    ----------
    candidates
        Candidate reactions (see :mod:`.candidates`), in the order to try them.
    store
        A :class:`ReactionStore` or its directory; finished candidate ids in it are skipped.
    calculator
        Zero-argument factory of ASE calculators (picklable for process / dask executors).
    executor
        Any ``concurrent.futures.Executor``; otherwise one is made from ``max_workers`` /
        ``scheduler_address`` (see :func:`make_executor`) and shut down at the end.
    max_candidates, max_accepted, time_budget
        Stop submitting after this many new candidates / accepted reactions / seconds.
    progress
        Show a tqdm bar with accepted / rejected / remaining counts.
    guesses
        Optional TS-guess provider ``(reactant, product) -> [Atoms, ...]`` tried before the
        IDPP / CI-NEB route (:func:`~.pipeline.verify_candidate`); it must pickle for process
        and dask executors (load any model lazily, inside the call). Each record then says
        which route won and the provider's CPU time.
    """
    if settings is None:
        settings = PipelineSettings()
    store = store if isinstance(store, ReactionStore) else ReactionStore(store)
    done = store.done_ids()
    keys = store.accepted_keys()
    todo = [c for c in candidates if c.id not in done]
    skipped = 0
    if max_candidates is not None:
        todo = todo[:max_candidates]
    own = executor is None
    pool = make_executor(max_workers=max_workers, scheduler_address=scheduler_address) if own else executor
    workers = max_workers if own else getattr(pool, "_max_workers", max_workers)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="cand", dynamic_ncols=True, mininterval=5.0)
    t0 = time.monotonic()
    counts = {"accepted": 0, "rejected": 0}
    queue = iter(todo)
    pending: dict[cf.Future, Candidate] = {}
    retry: list[Candidate] = []
    retried: set[str] = set()
    submitted = 0
    stop = False

    def submit_more() -> None:
        nonlocal submitted, stop
        while not stop and len(pending) < 2 * max(workers, 1):
            if time_budget is not None and time.monotonic() - t0 > time_budget:
                stop = True
                return
            if max_accepted is not None and counts["accepted"] >= max_accepted:
                stop = True
                return
            cand = retry.pop() if retry else next(queue, None)
            if cand is None:
                return
            known = keys.get(_candidate_key(cand))
            if known is not None:  # already accepted (maybe from another seed or direction): no compute
                record = {"id": cand.id, "seed": cand.seed, "family": cand.family,
                          "kind": getattr(cand, "kind", "surface"), "status": "rejected",
                          "reason": "duplicate", "detail": f"same reaction as {known} (not computed)",
                          "seconds": 0.0, "cpu_seconds": 0.0, "finished": round(time.time(), 1)}
                store.append(record)
                counts["rejected"] += 1
                if bar is not None:
                    bar.update(1)
                continue
            pending[pool.submit(run_candidate, cand, calculator, settings, guesses)] = cand
            submitted += 1

    lock = contextlib.ExitStack()
    if not lock.enter_context(store.writer_lock(wait=False)):
        lock.close()
        if own:
            _shutdown(pool)
        raise RuntimeError(f"another builder is appending to {store.directory}; stop it first (one writer per store)")
    try:
        store.repair()
        submit_more()
        while pending:
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            broken = False
            for fut in finished:
                cand = pending.pop(fut)
                try:
                    res = fut.result()
                except Exception as err:  # a worker died (e.g. segfault in native code)
                    if isinstance(err, BrokenExecutor):
                        broken = True
                        if cand.id not in retried:  # innocent bystanders of a crash get one more try
                            retried.add(cand.id)
                            retry.append(cand)
                            continue
                    res = {"id": cand.id, "status": "rejected",
                           "reason": "worker_crashed", "detail": f"{type(err).__name__}: {err}"[:200]}
                reaction = res.pop("reaction", None)
                if reaction is not None and res["key"] in keys:
                    res.update(status="rejected", reason="duplicate", detail=f"same reaction as {keys[res['key']]}")
                    reaction = None
                if reaction is not None:
                    keys[res["key"]] = reaction.id
                    counts["accepted"] += 1
                else:
                    counts["rejected"] += 1
                store.append(res, reaction)
                if on_result is not None:
                    on_result(res)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(**counts, remaining=len(todo) - sum(counts.values()), refresh=False)
            if broken and own:
                for fut, cand in list(pending.items()):
                    if cand.id not in retried:
                        retried.add(cand.id)
                        retry.append(cand)
                    pending.pop(fut)
                _shutdown(pool)
                pool = make_executor(max_workers=max_workers, scheduler_address=scheduler_address)
            submit_more()
    finally:
        lock.close()
        if bar is not None:
            bar.close()
        if own:
            _shutdown(pool)
    return BuildSummary(accepted=counts["accepted"], rejected=counts["rejected"], skipped=skipped,
                        remaining=len(todo) - sum(counts.values()), seconds=time.monotonic() - t0,
                        workers=workers)
