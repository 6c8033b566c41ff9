"""Training on a Dask cluster (``pip install "ssgs[dask]"``).

EM over many files is a map and a sum: each file's features and each
file's E-step statistics are independent, and their sum feeds one M-step.
Here the workers decode and analyse the files (reading fsspec URLs
themselves) and keep each file's observations in their memory as Dask
futures; every EM iteration sends them the parameters and gets back each
sequence's statistics; the client adds those in file order and runs the
M-step, exactly as a local run would:

- the local E-step sums per-sequence statistics as ((0 + s0) + s1) + ...;
  a worker's E-step over one sequence returns that sequence's s exactly,
  and the client adds them in the same order from zeros, so the model is
  bit-identical to the local run's (tested);
- a lost worker's futures are recomputed by Dask from the same files with
  the same code, so losing one changes nothing (tested by killing one).

Only the parameters and the statistics cross the network each iteration; the
training artifacts (for checkpoints) are gathered once, after the analysis.
"""

from __future__ import annotations

import pickle

import numpy as np

from ssgs import kernels
from ssgs.corpus import analyse_item
from ssgs.errors import AudioError

__all__ = ["DaskBackend", "connect"]


def _analyse(config, item, augment):
    """Worker task: decode and analyse one file (or URL) with the analysis
    settings ``config``; an unusable file comes back as its AudioError."""
    try:
        return analyse_item(item, 0, config, kernel_threads=1, augment=augment)
    except AudioError as exc:
        return exc


def _observations(analysed):
    """Worker task: the per-sequence observations of an analysed file (or []
    for an unusable one), kept on the worker."""
    if isinstance(analysed, Exception):
        return []
    return [feats.observations for feats, _ in analysed]


def _estep(sequences, params):
    """Worker task: the E-step statistics of each sequence on its own."""
    startprob, transmat, means, covars = params
    out = []
    for X in sequences:
        X = np.asarray(X, dtype=np.float64)
        r = kernels.estep(X, [X.shape[0]], startprob, transmat, means, covars, n_threads=1)
        out.append((r.seq_log_likelihood[0], r.occupancy, r.start_occupancy, r.xi_sum, r.moment1, r.moment2))
    return out


def connect(scheduler=None, n_workers=None):
    """A dask.distributed Client: to a scheduler address, or to a new local
    cluster of ``n_workers`` worker processes (one thread each)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError('distributed training needs Dask: pip install "ssgs[dask]"') from None
    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=int(n_workers), threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster)


class DaskBackend:
    """Feature extraction and E-steps on a Dask cluster, for
    :class:`ssgs.SpectralStateGuidedSynthesis`."""

    def __init__(self, client):
        self.client = client
        self.sequences = []  # futures, one per file: the file's per-sequence observations
        self.bytes_per_iteration = []

    def extract(self, config, items, augment=False):
        """Analyse ``items`` on the workers with the analysis settings
        ``config`` (a :class:`ssgs.features.FeatureConfig`); returns
        (analysed, skipped) on the client, as
        :func:`ssgs.corpus.analyse_items` does, and keeps the observations
        there."""
        futures = [self.client.submit(_analyse, config, item, bool(augment), pure=False) for item in items]
        self.sequences = [self.client.submit(_observations, f, pure=False) for f in futures]
        results = self.client.gather(futures)
        analysed, skipped = [], []
        for item, result in zip(items, results):
            if isinstance(result, Exception):
                message, prefix = str(result), f"{item}: "
                skipped.append((str(item), message[len(prefix):] if message.startswith(prefix) else message))
            else:
                analysed.extend(result)
        del futures
        return analysed, skipped

    def close(self):
        """Release the workers' data, then the client and a local cluster."""
        self.sequences = []
        cluster = getattr(self.client, "cluster", None)
        self.client.close()
        if cluster is not None:
            cluster.close()

    def attach(self, observations, lengths):
        """Send observations the client already has (a resumed checkpoint)
        to the workers, one future per sequence."""
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        pieces = [[np.asarray(observations[a:b])] for a, b in zip(offsets[:-1], offsets[1:])]
        self.sequences = self.client.scatter(pieces)

    def estep(self, params):
        """The E-step over every sequence, reduced in sequence order."""
        p = (params.startprob, params.transmat, params.means, params.covars)
        # the parameters travel inside each task (as large as one sequence's
        # statistics back): a task whose worker dies is rerun elsewhere as it
        # is, where a broadcast to every worker waited for ever on a worker
        # killed while it received
        futures = [self.client.submit(_estep, seqs, p, pure=False) for seqs in self.sequences]
        per_file = self.client.gather(futures)
        results = [r for file in per_file for r in file]
        N, D = params.means.shape
        occ, start, xi = np.zeros(N), np.zeros(N), np.zeros((N, N))
        m1, m2 = np.zeros((N, D)), np.zeros((N, D, D))
        for _, o, s, x, a, b in results:
            occ += o
            start += s
            xi += x
            m1 += a
            m2 += b
        seq_ll = np.array([r[0] for r in results])
        self.bytes_per_iteration.append(len(pickle.dumps(p)) * len(futures) + len(pickle.dumps(results)))
        return kernels.EStepResult(float(np.sum(seq_ll)), seq_ll, occ, start, xi, m1, m2, None)
