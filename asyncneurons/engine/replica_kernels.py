"""Compiled kernels over a replica axis: the single run's kernels applied to each replica's block.

Replicas (:mod:`asyncneurons.engine.replicas`) keep R runs' arrays with a leading axis of length R. A
fused layer of m units is then R·m rows, which the single run's kernels in
:mod:`asyncneurons.learning.compiled` serve directly where rows are independent (pre-activations, a
Bernoulli layer's firing, Weight Max's learning step). Where the single run's kernel works on a
whole group or on a whole parameter buffer (a softmax population's draw, the retrograde sums
over a layer's units, the critic's Adam step with its TD error, its layers' softplus), the
kernels below call it once per replica on that replica's block, so replica r computes exactly
the bits of run r alone. NumPy's ``exp`` and ``log1p`` stay NumPy's, between the kernels, on
contiguous arrays (:mod:`asyncneurons.learning.compiled` says why).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from asyncneurons.learning import compiled

_CACHE = True


@njit(cache=_CACHE, error_model="numpy")
def hold_inputs(x, H):
    """``H[r, j] = [x[r], 1]`` for every replica r and unit j: what each unit holds on its synapses
    (H: R × m × (n + 1), x: R × n)."""
    R, m, cols = H.shape
    for r in range(R):
        for j in range(m):
            for i in range(cols - 1):
                H[r, j, i] = x[r, i]
            H[r, j, cols - 1] = 1.0


@njit(cache=_CACHE, error_model="numpy")
def sum_blocks(C, m, out):
    """``out[r] = Σ_j C[r·m + j]``, added row after row from j = 0 (the retrograde signals each
    replica's layer below receives: :func:`asyncneurons.learning.compiled.sum_rows_ordered` per block)."""
    for r in range(out.shape[0]):
        compiled.sum_rows_ordered(C[r * m:(r + 1) * m], out[r])


@njit(cache=_CACHE, error_model="numpy")
def logits_rows(P, H, temperature, m, n, pot, z):
    """A softmax or categorical output of m units for every replica: the pre-activations ``pot``
    of its R·m rows, then each replica's n logits shifted for ``exp``
    (:func:`asyncneurons.learning.compiled.logits_shifted`) in row r of ``z`` (R × n)."""
    compiled.potential_rows(P, H, pot)
    for r in range(z.shape[0]):
        compiled.logits_shifted(pot[r * m:(r + 1) * m], temperature, n, z[r])


@njit(cache=_CACHE, error_model="numpy")
def categorical_rows(e, keys, counters, temperature, decay, decays, H, E, values, g, actions):
    """From ``e = exp(z)`` (R × n): each replica's draw, one-hot sample, score and trace
    (:func:`asyncneurons.learning.compiled.categorical_post` on its m rows, with the keyed uniform of its
    first unit); ``actions[r]`` its action; every counter advances by one."""
    R = e.shape[0]
    m = values.shape[0] // R
    u = np.empty(1)
    for r in range(R):
        a, b = r * m, (r + 1) * m
        compiled.uniforms_into(keys[a:a + 1], counters[a:a + 1], u)
        d = decays[a:b] if decays.shape[0] > 0 else decays
        actions[r] = compiled.categorical_post(e[r], u[0], temperature, decay, d, H[a:b], E[a:b], values[a:b],
                                               g[a:b])
        for j in range(a, b):
            counters[j] += 1


@njit(cache=_CACHE, error_model="numpy")
def critic_hidden_pre_rows(pot, buf):
    """Per replica r, ``buf[r] = [clamp(pot[r], ±30), −clamp(pot[r], ±20)]``
    (:func:`asyncneurons.learning.compiled.critic_hidden_pre`; ``exp`` comes next on all of buf)."""
    for r in range(pot.shape[0]):
        compiled.critic_hidden_pre(pot[r], buf[r])


@njit(cache=_CACHE, error_model="numpy")
def critic_hidden_post_rows(pot, buf, logs, x_next):
    """Per replica r, ``x_next[r] = [softplus(pot[r]), 1]`` and σ(pot[r]) in place of buf[r, m:]
    (:func:`asyncneurons.learning.compiled.critic_hidden_post`), with ``logs[r, :m] = log1p(exp(…))`` the
    softplus's NumPy part."""
    m = pot.shape[1]
    for r in range(pot.shape[0]):
        for j in range(m):
            buf[r, j] = logs[r, j]
        compiled.critic_hidden_post(pot[r], buf[r], x_next[r])


@njit(cache=_CACHE, error_model="numpy")
def outer_rows(d, x, G):
    """``G[r] = d[r] ⊗ x[r]`` for every replica (:func:`asyncneurons.learning.compiled.outer_into`)."""
    for r in range(G.shape[0]):
        compiled.outer_into(d[r], x[r], G[r].reshape(G.shape[1] * G.shape[2]), 0)


@njit(cache=_CACHE, error_model="numpy")
def adam_scaled_rows(P, M, V, Z, scale, lr, b1, c1, b2, c2, bc1, bc2, correct, eps):
    """Per replica r, Adam on the update ``Z[r] · scale[r]`` at learning rate ``lr`` (P, M, V, Z:
    R × k; :func:`asyncneurons.learning.compiled.adam_scaled_flat` on one segment)."""
    ends = np.empty(1, np.int64)
    ends[0] = P.shape[1]
    lrs = np.empty(1)
    lrs[0] = lr
    for r in range(P.shape[0]):
        compiled.adam_scaled_flat(P[r], M[r], V[r], Z[r], scale[r], lrs, ends, b1, c1, b2, c2, bc1, bc2, correct, eps)


@njit(cache=_CACHE, error_model="numpy")
def record_rows(Z, reset, decay, G):
    """The critic's trace for every replica: ``Z[r] ← 0`` where ``reset[r]``, then
    ``Z ← decay · Z + G`` (:func:`asyncneurons.learning.compiled.decay_add`; Z, G: R × k)."""
    for r in range(Z.shape[0]):
        if reset[r]:
            Z[r, :] = 0.0
        compiled.decay_add(Z[r], decay, G[r])


# ---------------------------------------------------------------------- the chain of layers over replicas
@njit(cache=_CACHE, error_model="numpy")
def _hold_rows(x, H):
    """Every row of replica r's block of H (R·m × (n + 1)) holds ``[x[r], 1]``."""
    R = x.shape[0]
    rows, cols = H.shape
    m = rows // R
    for r in range(R):
        for j in range(r * m, (r + 1) * m):
            for i in range(cols - 1):
                H[j, i] = x[r, i]
            H[j, cols - 1] = 1.0


@njit(cache=_CACHE, error_model="numpy")
def deliver_bernoulli_pre_rows(x, P, H, temperature, pot, xs, e):
    """Each replica's inputs ``x[r]`` held by its rows of H, then
    :func:`asyncneurons.learning.compiled.bernoulli_pre` on all R·m rows (``exp`` comes next on e)."""
    _hold_rows(x, H)
    compiled.bernoulli_pre(P, H, temperature, pot, xs, e)


@njit(cache=_CACHE, error_model="numpy")
def deliver_logits_rows(x, P, H, temperature, n, pot, z):
    """Each replica's inputs held by its rows of H, then :func:`logits_rows` (``exp`` comes next on z)."""
    _hold_rows(x, H)
    logits_rows(P, H, temperature, H.shape[0] // x.shape[0], n, pot, z)


@njit(cache=_CACHE, error_model="numpy")
def weight_max_chain_rows(Ps, Ms, Vs, Es, Cs, Rs, deltas, lrs, b1, c1, b2, c2, bc1s, bc2s, corrects, eps, resets):
    """:func:`asyncneurons.learning.compiled.weight_max_chain` for R replicas stacked by rows (layer l:
    R·m_l rows, replica after replica): the top layer's rows of replica r receive ``deltas[r]``;
    layer l's rewards are, per replica, the ordered sum over its block of layer l+1's signals;
    each layer learns on all its rows at once (rows are independent: the single run's bits per
    replica), and replica r's traces are cleared after its layer has learned where ``resets[r]``."""
    L = len(Ps)
    NR = deltas.shape[0]
    for l in range(L - 1, -1, -1):
        R = Rs[l]
        m = R.shape[0] // NR
        if l == L - 1:
            for r in range(NR):
                for j in range(r * m, (r + 1) * m):
                    R[j] = deltas[r]
        else:
            C = Cs[l + 1]
            mu = C.shape[0] // NR
            for r in range(NR):
                compiled.sum_rows_ordered(C[r * mu:(r + 1) * mu], R[r * m:(r + 1) * m])
        if l > 0:
            compiled.weight_max_rows(Ps[l], Ms[l], Vs[l], Es[l], R, lrs[l], b1, c1, b2, c2, bc1s[l], bc2s[l],
                                     corrects[l], eps, Cs[l])
        else:
            compiled.reinforce_rows(Ps[l], Ms[l], Vs[l], Es[l], R, lrs[l], b1, c1, b2, c2, bc1s[l], bc2s[l],
                                    corrects[l], eps, Cs[l])
        E = Es[l]
        cols = E.shape[1]
        for r in range(NR):
            if resets[r]:
                for j in range(r * m, (r + 1) * m):
                    for i in range(cols):
                        E[j, i] = 0.0


# ---------------------------------------------------------------------- the critic over replicas
@njit(cache=_CACHE, error_model="numpy")
def adam_record_rows(Ps, Ms, Vs, Zs, Gs, deltas, lrs, b1, c1, b2, c2, bc1, bc2, correct, eps, resets, decay):
    """The critic's step after a TD error for every replica and layer (arrays R × k_l): Adam on
    ``Z[r] · deltas[r]`` at ``lrs[l]`` (:func:`adam_scaled_rows`), then ``Z[r] ← 0`` where
    ``resets[r]`` and ``Z ← decay · Z + G`` (:func:`record_rows`)."""
    for l in range(len(Ps)):
        P, M, V, Z, G = Ps[l], Ms[l], Vs[l], Zs[l], Gs[l]
        for r in range(P.shape[0]):
            compiled._adam_span(P[r], M[r], V[r], Z[r], deltas[r], lrs[l], b1, c1, b2, c2, bc1, bc2, correct, eps)
        for r in range(P.shape[0]):
            if resets[r]:
                Z[r, :] = 0.0
            compiled.decay_add(Z[r], decay, G[r])


@njit(cache=_CACHE, error_model="numpy")
def adam_record_outer_rows(Ps, Ms, Vs, Zs, Ds, Xs, deltas, lrs, b1, c1, b2, c2, bc1, bc2, correct, eps, resets, decay):
    """:func:`adam_record_rows` with each layer's gradient given by its factors: replica r's
    gradient of layer l is ``Ds[l][r] ⊗ Xs[l][r]`` (the backward term and the layer's input
    [x, 1]), each entry the one product :func:`asyncneurons.learning.compiled.outer_into` gives it, added
    to the decayed trace as it is formed (``Z ← decay · Z + d_j x_i``)."""
    for l in range(len(Ps)):
        P, M, V, Z, D, X = Ps[l], Ms[l], Vs[l], Zs[l], Ds[l], Xs[l]
        n = X.shape[1]
        for r in range(P.shape[0]):
            compiled._adam_span(P[r], M[r], V[r], Z[r], deltas[r], lrs[l], b1, c1, b2, c2, bc1, bc2, correct, eps)
        for r in range(P.shape[0]):
            if resets[r]:
                Z[r, :] = 0.0
            z = Z[r]
            x = X[r]
            for j in range(D.shape[1]):
                dj = D[r, j]
                for i in range(n):
                    z[j * n + i] = z[j * n + i] * decay + dj * x[i]
