"""One-layer population dynamics under uniform alpha, with exact Gaussian-mixture moments.

Setting (``docs/theory.md`` section 3). One node ``f = h(w^T x)`` with the LeakyReLU
family ``h(u) = u`` for ``u > 0`` and ``slope * u`` otherwise (``slope = 0``: ReLU,
``slope = 1``: linear; homogeneous for every slope, gate ``h'(u) = slope + (1 - slope) 1[u > 0]``).
Data: a :class:`~nlcl_utils.data.mixture.MixtureTask` (centres ``mu_c``, weights ``pi_c``,
isotropic spread ``sigma``; the two views are independent draws from the sample's component).

The matrix ``A(w) = C_alpha[x~_w]`` (uniform alpha, population limit). Uniform alpha over a
batch gives ``C = 2 V[a] - E[(a - a')(a - a')^T]`` (exactly, in expectation over batches; see
:mod:`nlcl_utils.engine.alpha_cl`), which for exchangeable views equals ``2 Cov(a, a')``. Because the
views are independent given the component,

    A(w) = 2 sum_c pi_c (m_c(w) - m(w)) (m_c(w) - m(w))^T,   m_c(w) = E[x~_w | c],  m = sum_c pi_c m_c.

Exact moments (why: they make ``A`` a smooth function of ``w``, so fixed points are exact to
machine precision and the Jacobian comes from autograd; a finite sample would make ``A``
piecewise constant with fixed points only away from gate boundaries). With
``u_c = w^T mu_c``, ``s = sigma |w|``, ``t_c = u_c / s`` and the truncated-Gaussian moments
``E[1(w^T x > 0) | c] = Phi(t_c)``, ``E[1(w^T x > 0) x | c] = Phi(t_c) mu_c + sigma phi(t_c) w/|w|``:

    m_c(w) = slope mu_c + (1 - slope) (Phi(t_c) mu_c + sigma phi(t_c) w/|w|)
    g_c(w) = E[h(w^T x) | c] = w^T m_c(w) = slope u_c + (1 - slope)(u_c Phi(t_c) + s phi(t_c))

The energy ``E(w) = 1/2 C_alpha[f] = sum_c pi_c (g_c - g)^2 = 1/2 w^T A(w) w`` has gradient
``A(w) w`` (``grad g_c = m_c``), so the projected flow ``w' = (I - w w^T) A(w) w`` is the
Riemannian gradient ascent of ``E`` on the unit sphere: a stable fixed point is a local
maximum of ``E`` and the tangent Jacobian at a fixed point (its Riemannian Hessian) is
symmetric.

Additive views (``task.views == "additive"``, the limit of vanishing augmentation noise ``s``):
the two views are the same draw ``x``, the augmentation term of ``C_alpha`` vanishes and

    A(w) = 2 V[x~_w] = A_between(w) + 2 sum_c pi_c Cov(x~_w | c),

so the within-component variance *stays* (with independent views it cancels exactly). Its
closed form uses the second truncated moments (``y = w^T x``, ``a`` the slope, ``h'(y)^2 = a^2 +
(1 - a^2) 1[y > 0]``): ``E[1 x y | c] = (u_c Phi + s phi) mu_c + sigma^2 Phi w``,
``E[h(y)^2 | c] = a^2 (u^2 + s^2) + (1 - a^2)((u^2 + s^2) Phi + u s phi)`` and
``E[1 x x^T | c] = Phi mu mu^T + sigma phi (mu w^T + w mu^T)/|w| + sigma^2 [(Phi - t phi) ww^T/|w|^2
+ Phi (I - ww^T/|w|^2)]``. For finite ``s`` the matrix differs from this limit by ``O(s)``.

Local roughness and stability (``docs/theory.md`` section 3). At a fixed point ``A w = lam w`` and for
tangent ``u``, the flow's derivative is ``DF[u] = (A - lam I) u + (I - ww^T)(d_u A) w``. With an
orthonormal tangent basis ``Q``: ``J = Q^T (A - lam I) Q + R``, ``R = Q^T (d_Q A) w`` (projected on
the tangent space this decomposition holds at any unit ``w`` with ``lam = w^T A w``; at a fixed
point ``J`` is the linearization of the flow on the sphere). We define the
*local roughness* ``rho(w) = max_{u perp w, |u| = 1} |(I - ww^T)(d_u A(w)) w| = ||R||_2`` (computed by
autograd) and the *eigengap* ``gap = lam - max eig(Q^T A Q)`` (``lam_1 - lam_2`` when ``w`` is the top
eigenvector, negative when it is not). ``R`` is symmetric (``Hess E = A + (d A) w``), so Weyl's
inequality gives ``-gap - rho <= max eig(J) <= -gap + rho``: ``gap > rho`` implies stability,
``gap < -rho`` instability, and ``|gap| <= rho`` leaves it undecided.

Populations. Every function takes a :class:`MixtureTask` (one mixture for every row of ``w``) or a
:class:`Population` built by :meth:`Population.stack` (one mixture per row: a phase diagram in
one batch; all mixtures need the same ``C`` and ``d``).

Shapes: ``w`` is ``[..., d]`` (any leading replica dims ``B``; ``[B, d]`` for a stacked
population); ``slope`` is a float or a tensor broadcasting against ``w.shape[:-1]``. Everything
runs in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nlcl_utils import progress as progress_bars
from nlcl_utils.data.mixture import MixtureTask
from nlcl_utils.engine import activations

Tensor = torch.Tensor

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def linear_time_scale(task: MixtureTask) -> float:
    """``1 / lambda_max(A_linear)`` with ``A_linear = 2 * between_covariance`` (the flow's time unit)."""
    return 1.0 / float(torch.linalg.eigvalsh(2 * task.between_covariance())[-1])


@dataclass(frozen=True)
class Population:
    """The mixture parameters the dynamics reads: shared by every row, or one mixture per row.

    Shared (``rows is None``): centres ``[C, d]``, weights ``[C]``, noise/additive/time_scale ``[1]``.
    Per row (``rows = B``): centres ``[B, C, d]``, weights ``[B, C]``, noise/additive/time_scale
    ``[B, 1]``. ``additive`` is 1.0 for additive views, 0.0 for independent ones; ``time_scale`` is
    :func:`linear_time_scale` of each row's mixture. Build with :meth:`of` or :meth:`stack`.
    """

    centres: Tensor
    weights: Tensor
    noise: Tensor
    additive: Tensor
    time_scale: Tensor
    rows: int | None = None

    @classmethod
    def of(cls, task: MixtureTask) -> Population:
        one = lambda v: torch.tensor([float(v)], dtype=torch.float64)  # noqa: E731
        return cls(
            task.centres, task.weights, one(task.noise), one(task.views == "additive"), one(linear_time_scale(task))
        )

    @classmethod
    def stack(cls, tasks: Sequence[MixtureTask], rows: int) -> Population:
        """``rows`` consecutive rows per task, in the order of ``tasks`` (``B = len(tasks) * rows``)."""
        if not tasks or not all(isinstance(t, MixtureTask) for t in tasks):
            raise ValueError("tasks: need a non-empty sequence of MixtureTask")
        if len({(t.n_components, t.dim) for t in tasks}) != 1:
            raise ValueError("tasks: every mixture of a stack needs the same n_components and dim")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"rows: must be an int >= 1, got {rows!r}")
        pops = [cls.of(t) for t in tasks]

        def rep(name: str) -> Tensor:
            return torch.stack([getattr(p, name) for p in pops]).repeat_interleave(rows, dim=0)

        return cls(rep("centres"), rep("weights"), rep("noise"), rep("additive"), rep("time_scale"), rows * len(tasks))

    @property
    def dim(self) -> int:
        return int(self.centres.shape[-1])

    @property
    def any_additive(self) -> bool:
        return bool((self.additive > 0).any())

    def per_row(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(centres, weights, noise, additive) for ``torch.func.vmap`` over rows."""
        return self.centres, self.weights, self.noise, self.additive


def _population(task: MixtureTask | Population, w: Tensor) -> Population:
    """Check ``w`` (float64, ``[..., d]``; ``[B, d]`` for a stacked population) and return the population."""
    pop = Population.of(task) if isinstance(task, MixtureTask) else task
    if not isinstance(pop, Population):
        raise ValueError(f"task: expected a MixtureTask or a Population, got {type(task).__name__}")
    if w.dim() < 1 or w.shape[-1] != pop.dim:
        raise ValueError(f"w: expected shape [..., {pop.dim}] (the data dimension), got {tuple(w.shape)}")
    if w.dtype != torch.float64:
        raise ValueError(f"w: must be float64 (exact population dynamics), got {w.dtype}")
    if pop.rows is not None and tuple(w.shape) != (pop.rows, pop.dim):
        raise ValueError(f"w: a stacked population needs shape [{pop.rows}, {pop.dim}], got {tuple(w.shape)}")
    return pop


def _slope(slope: float | Tensor, batch_shape: torch.Size) -> Tensor:
    """Validate ``slope`` (values in [0, 1]) and broadcast it to ``batch_shape`` (float64)."""
    s = torch.as_tensor(slope, dtype=torch.float64)
    if not bool(((s >= 0) & (s <= 1)).all()):
        raise ValueError(f"slope: every value must lie in [0, 1] (0 = ReLU, 1 = linear), got {slope!r}")
    try:
        return s.expand(batch_shape)
    except RuntimeError as err:
        raise ValueError(
            f"slope: shape {tuple(s.shape)} does not broadcast to w's batch shape {tuple(batch_shape)}"
        ) from err


# ---- unchecked cores: broadcasting, free of data-dependent control flow (vmap-able) -------------
# mu [..., C, d] or [C, d]; pi [..., C] or [C]; sig, add [..., 1] or [1]; w [..., d]; a [...].


def _gate_stats(mu, sig, w):
    """u [..., C], s [..., 1], t, Phi(t), phi(t) [..., C], w_hat [..., d] (see the module docstring)."""
    r = w.norm(dim=-1, keepdim=True)
    u = (w.unsqueeze(-2) * mu).sum(-1)
    s = sig * r
    t = u / s
    return u, s, t, torch.special.ndtr(t), torch.exp(-0.5 * t * t) * _INV_SQRT_2PI, w / r


def _gated_means(mu, sig, w, a):
    """``m [..., C, d]`` (``E[x~_w | c]``) and ``g [..., C]`` (``E[h(w^T x) | c]``)."""
    u, s, _, cdf, pdf, w_hat = _gate_stats(mu, sig, w)
    a = a.unsqueeze(-1)
    m_relu = cdf.unsqueeze(-1) * mu + (sig * pdf).unsqueeze(-1) * w_hat.unsqueeze(-2)
    m = a.unsqueeze(-1) * mu + (1 - a).unsqueeze(-1) * m_relu
    g = a * u + (1 - a) * (u * cdf + s * pdf)
    return m, g


def _centred(pi, m, g):
    mc = m - (pi.unsqueeze(-1) * m).sum(-2, keepdim=True)
    gc = g - (pi * g).sum(-1, keepdim=True)
    return mc, gc


def _a_times_w(mu, pi, sig, add, w, a, with_within: bool = True):
    m, g = _gated_means(mu, sig, w, a)
    mc, gc = _centred(pi, m, g)
    aw = 2 * (pi.unsqueeze(-1) * mc * gc.unsqueeze(-1)).sum(-2)
    if not with_within:
        return aw
    u, s, _, cdf, pdf, _ = _gate_stats(mu, sig, w)
    a2 = (a * a).unsqueeze(-1)  # [..., 1]
    var = sig * sig
    lin = u.unsqueeze(-1) * mu + (var * w).unsqueeze(-2)  # E[x y | c]            [..., C, d]
    relu = (u * cdf + s * pdf).unsqueeze(-1) * mu + (var * cdf).unsqueeze(-1) * w.unsqueeze(-2)  # E[1 x y | c]
    exy = a2.unsqueeze(-1) * lin + (1 - a2).unsqueeze(-1) * relu
    within = 2 * (pi.unsqueeze(-1) * (exy - m * g.unsqueeze(-1))).sum(-2)
    return aw + add * within


def _a_matrix(mu, pi, sig, add, w, a, with_within: bool = True):
    m, _ = _gated_means(mu, sig, w, a)
    mc = m - (pi.unsqueeze(-1) * m).sum(-2, keepdim=True)
    out = 2 * torch.einsum("...c,...cp,...cq->...pq", pi.expand(mc.shape[:-1]), mc, mc)
    if not with_within:
        return out
    _, _, t, cdf, pdf, w_hat = _gate_stats(mu, sig, w)
    d = w.shape[-1]
    eye = torch.eye(d, dtype=w.dtype)
    var = (sig * sig).unsqueeze(-1)  # [..., 1, 1]
    pic = pi.expand(cdf.shape)
    mumu = torch.einsum("...c,...cp,...cq->...pq", pic, mu.expand(m.shape), mu.expand(m.shape))
    ww = w_hat.unsqueeze(-1) * w_hat.unsqueeze(-2)
    s_mumu = torch.einsum("...c,...cp,...cq->...pq", pic * cdf, mu.expand(m.shape), mu.expand(m.shape))
    cross = torch.einsum("...c,...cp->...p", pic * pdf, mu.expand(m.shape)).unsqueeze(-1) * w_hat.unsqueeze(-2)
    p_on = (pic * cdf).sum(-1)[..., None, None]
    tpdf = (pic * t * pdf).sum(-1)[..., None, None]
    relu = s_mumu + sig.unsqueeze(-1) * (cross + cross.transpose(-1, -2)) + var * (p_on * eye - tpdf * ww)
    a2 = (a * a)[..., None, None]
    second = a2 * (mumu + var * eye) + (1 - a2) * relu  # sum_c pi_c E[h'^2 x x^T | c]
    mm = torch.einsum("...c,...cp,...cq->...pq", pic, m, m)
    return out + add.unsqueeze(-1) * 2 * (second - mm)


def _energy(mu, pi, sig, add, w, a):
    _, g = _gated_means(mu, sig, w, a)
    gc = g - (pi * g).sum(-1, keepdim=True)
    between = (pi * gc * gc).sum(-1)
    u, s, _, cdf, pdf, _ = _gate_stats(mu, sig, w)
    a2 = a.unsqueeze(-1) ** 2
    second = a2 * (u * u + s * s) + (1 - a2) * ((u * u + s * s) * cdf + u * s * pdf)  # E[h(y)^2 | c]
    within = (pi * (second - g * g)).sum(-1)
    return between + add.squeeze(-1) * within


# ---- public, checked --------------------------------------------------------------------------


def _args(task, w, slope):
    pop = _population(task, w)
    return pop, _slope(slope, w.shape[:-1])


def gated_means(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> tuple[Tensor, Tensor]:
    """Per-component gated means: ``m [..., C, d]`` (``E[x~_w | c]``) and ``g [..., C]`` (``E[h(w^T x) | c]``)."""
    pop, a = _args(task, w, slope)
    return _gated_means(pop.centres, pop.noise, w, a)


def energy(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> Tensor:
    """``E(w) = 1/2 C_alpha[f]``: ``sum_c pi_c (g_c - g)^2`` (+ the within-component variance of
    ``h(w^T x)`` for additive views), shape ``[...]``."""
    pop, a = _args(task, w, slope)
    return _energy(pop.centres, pop.weights, pop.noise, pop.additive, w, a)


def a_matrix(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> Tensor:
    """``A(w) = C_alpha[x~_w]``, shape ``[..., d, d]`` (symmetric PSD; module docstring)."""
    pop, a = _args(task, w, slope)
    return _a_matrix(pop.centres, pop.weights, pop.noise, pop.additive, w, a, pop.any_additive)


def a_times_w(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> Tensor:
    """``A(w) w`` without forming ``A``, shape ``[..., d]``."""
    pop, a = _args(task, w, slope)
    return _a_times_w(pop.centres, pop.weights, pop.noise, pop.additive, w, a, pop.any_additive)


def _project(aw: Tensor, w: Tensor) -> Tensor:
    return aw - (aw * w).sum(-1, keepdim=True) * w


def projected_flow(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> Tensor:
    """``(I - w w^T) A(w) w`` for unit ``w`` ``[..., d]`` (docs/theory.md section 3; not renormalized)."""
    return _project(a_times_w(task, w, slope), w)


def fixed_point_residual(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> Tensor:
    """Relative residual ``|(I - w w^T) A(w) w| / |A(w) w|`` at unit ``w``, shape ``[...]``."""
    aw = a_times_w(task, w, slope)
    return _project(aw, w).norm(dim=-1) / aw.norm(dim=-1)


@dataclass
class FlowResult:
    """Endpoints of :func:`integrate_flow`.

    w: ``[B, d]`` unit endpoints; residual: ``[B]`` relative fixed-point residuals;
    steps: ``[B]`` Euler steps taken; converged: ``[B]`` bool (residual <= tol).
    """

    w: Tensor
    residual: Tensor
    steps: Tensor
    converged: Tensor


def _rows(pop: Population, idx: Tensor) -> Population:
    """The sub-population of rows ``idx`` (a shared population is returned as is)."""
    if pop.rows is None:
        return pop
    return Population(
        pop.centres[idx], pop.weights[idx], pop.noise[idx], pop.additive[idx], pop.time_scale[idx], int(idx.numel())
    )


def integrate_flow(
    task: MixtureTask | Population,
    w0: Tensor,
    slope: float | Tensor,
    dt: float = 0.2,
    tol: float = 1e-10,
    max_steps: int = 20000,
    check_every: int = 100,
    progress: bool = False,
) -> FlowResult:
    """Integrate ``w' = (I - w w^T) A(w) w`` from the rows of ``w0`` ``[B, d]`` (batched).

    Explicit Euler with retraction onto the sphere (``w <- normalize(w + h F(w))``), step
    ``h = dt * linear_time_scale`` of the row's mixture (``dt`` is in units of
    ``1/lambda_max(A_linear)``). Every ``check_every`` steps, rows whose relative residual is
    ``<= tol`` stop; the others go on, up to ``max_steps``. ``slope``: float or ``[B]``.
    """
    pop = Population.of(task) if isinstance(task, MixtureTask) else task
    if w0.dim() != 2 or w0.shape[1] != pop.dim:
        raise ValueError(f"w0: expected shape [B, {pop.dim}], got {tuple(w0.shape)}")
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt: must be a finite float > 0, got {dt!r}")
    if not tol > 0:
        raise ValueError(f"tol: must be > 0, got {tol!r}")
    if not (isinstance(max_steps, int) and max_steps >= 1):
        raise ValueError(f"max_steps: must be an int >= 1, got {max_steps!r}")
    if not (isinstance(check_every, int) and check_every >= 1):
        raise ValueError(f"check_every: must be an int >= 1, got {check_every!r}")
    w = w0.to(torch.float64)
    w = w / w.norm(dim=1, keepdim=True)
    pop = _population(pop, w)
    slopes = _slope(slope, w.shape[:1]).clone()
    b = w.shape[0]
    steps = torch.zeros(b, dtype=torch.long)
    active = torch.arange(b)
    bar = progress_bars.bar(total=max_steps, desc="flow", leave=False, progress=progress)
    done = 0
    while done < max_steps and active.numel() > 0:
        n = min(check_every, max_steps - done)
        wa, sa, pa = w[active], slopes[active], _rows(pop, active)
        h = dt * pa.time_scale
        for _ in range(n):
            aw = _a_times_w(pa.centres, pa.weights, pa.noise, pa.additive, wa, sa, pa.any_additive)
            wa = wa + h * _project(aw, wa)
            wa = wa / wa.norm(dim=1, keepdim=True)
        w[active] = wa
        steps[active] += n
        done += n
        bar.update(n)
        res = fixed_point_residual(pa, wa, sa)
        active = active[res > tol]
    bar.close()
    residual = fixed_point_residual(pop, w, slopes)
    return FlowResult(w=w, residual=residual, steps=steps, converged=residual <= tol)


def spectrum(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> tuple[Tensor, Tensor]:
    """Rayleigh quotient ``w^T A w / w^T w`` ``[...]`` and the eigenvalues of ``A(w)`` ``[..., d]`` (ascending)."""
    a = a_matrix(task, w, slope)
    rq = torch.einsum("...p,...pq,...q->...", w, a, w) / (w * w).sum(-1)
    return rq, torch.linalg.eigvalsh(a)


def tangent_basis(w: Tensor) -> Tensor:
    """Orthonormal basis of the tangent space ``{v : v^T w = 0}`` of unit ``w`` ``[B, d]``: ``[B, d, d-1]``."""
    b, d = w.shape
    # Householder reflection mapping e_1 to w: its columns 2..d span w's orthogonal complement.
    e1 = torch.zeros_like(w)
    e1[:, 0] = 1.0
    sign = torch.where(w[:, :1] >= 0, 1.0, -1.0).to(w.dtype)
    v = w + sign * e1
    v = v / v.norm(dim=1, keepdim=True)
    house = torch.eye(d, dtype=w.dtype).expand(b, d, d) - 2 * v.unsqueeze(2) * v.unsqueeze(1)
    return house[:, :, 1:]


def _vmapped(fn, pop: Population, *row_args: Tensor) -> Tensor:
    """``fn(mu, pi, sig, add, *row_args)`` for every row, by ``torch.func.vmap`` (shared or per-row population)."""
    dims = (None,) * 4 if pop.rows is None else (0,) * 4
    return torch.func.vmap(fn, in_dims=dims + (0,) * len(row_args))(*pop.per_row(), *row_args)


def _check_rows(task, w, slope) -> tuple[Population, Tensor]:
    pop = _population(task, w)
    if w.dim() != 2:
        raise ValueError(f"w: expected shape [B, {pop.dim}], got {tuple(w.shape)}")
    return pop, _slope(slope, w.shape[:1])


def tangent_jacobian(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> Tensor:
    """Jacobian of ``F(w) = A(w) w - (w^T A(w) w) w`` restricted to the tangent space, ``[B, d-1, d-1]``.

    ``J = dF/dw`` by autograd (``A`` is smooth with exact moments), then ``Q^T J Q`` with ``Q``
    from :func:`tangent_basis`. At a fixed point ``J`` maps tangent vectors to tangent
    vectors (the sphere is invariant), so this is the exact linearization of the flow on the
    sphere; it is symmetric there (Riemannian Hessian of ``E``). ``w``: unit rows ``[B, d]``.
    """
    pop, slopes = _check_rows(task, w, slope)
    within = pop.any_additive

    def flow_one(mu, pi, sig, add, wi, si):
        aw = _a_times_w(mu, pi, sig, add, wi, si, within)
        return aw - (aw * wi).sum() * wi

    def jac_one(mu, pi, sig, add, wi, si):
        return torch.func.jacrev(flow_one, argnums=4)(mu, pi, sig, add, wi, si)

    jac = _vmapped(jac_one, pop, w, slopes)  # [B, d, d]
    q = tangent_basis(w)
    return q.transpose(1, 2) @ jac @ q


def roughness_matrix(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> Tensor:
    """``R = Q^T (d_Q A(w)) w`` ``[B, d-1, d-1]``: column k is ``(I - ww^T)(d A(w)/d q_k) w`` in the
    tangent basis ``Q`` (:func:`tangent_basis`), with ``w`` held fixed outside ``A``; by autograd."""
    pop, slopes = _check_rows(task, w, slope)
    within = pop.any_additive

    def a_fixed_w(mu, pi, sig, add, v, wi, si):
        return _a_matrix(mu, pi, sig, add, v, si, within) @ wi

    def jac_one(mu, pi, sig, add, wi, si):
        return torch.func.jacrev(a_fixed_w, argnums=4)(mu, pi, sig, add, wi, wi, si)

    jac = _vmapped(jac_one, pop, w, slopes)  # [B, d, d]: d(A(v) w)/dv at v = w
    q = tangent_basis(w)
    return q.transpose(1, 2) @ jac @ q


def roughness(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> Tensor:
    """Local roughness ``rho(w) = max_{u perp w, |u|=1} |(I - ww^T)(d_u A(w)) w|`` ``[B]`` (spectral
    norm of :func:`roughness_matrix`)."""
    return torch.linalg.matrix_norm(roughness_matrix(task, w, slope), ord=2)


@dataclass
class FixedPointChecks:
    """Per row of unit ``w`` ``[B, d]`` (every field ``[B]``), from :func:`fixed_point_checks`.

    residual: :func:`fixed_point_residual`; rayleigh: ``w^T A w``; lam_max, lam_2: the two largest
    eigenvalues of ``A(w)``; top_gap: ``(lam_max - rayleigh) / lam_max`` (0 when ``w`` is a top
    eigenvector); tangent_max: largest eigenvalue of the symmetrized tangent Jacobian (< 0:
    linearly stable); asymmetry: relative asymmetry of that Jacobian; gap: the eigengap
    ``rayleigh - max eig(Q^T A Q)`` (``lam_1 - lam_2`` for a top eigenvector, < 0 otherwise);
    roughness: ``rho(w)``; decomposition_error: ``|J - (Q^T A Q - rayleigh I + R)| / |J|`` (an
    identity at any unit ``w`` for the tangent-projected Jacobian; at a fixed point ``J`` is the
    flow's linearization, module docstring).
    """

    residual: Tensor
    rayleigh: Tensor
    lam_max: Tensor
    lam_2: Tensor
    top_gap: Tensor
    tangent_max: Tensor
    asymmetry: Tensor
    gap: Tensor
    roughness: Tensor
    decomposition_error: Tensor

    def select(self, mask: Tensor) -> FixedPointChecks:
        """The rows where ``mask`` ``[B]`` is true."""
        return FixedPointChecks(**{k: v[mask] for k, v in vars(self).items()})

    @property
    def weyl_excess(self) -> Tensor:
        """How far ``tangent_max`` lies outside ``[-gap - rho, -gap + rho]`` (<= 0: inside) ``[B]``."""
        return (self.tangent_max + self.gap).abs() - self.roughness


def fixed_point_checks(task: MixtureTask | Population, w: Tensor, slope: float | Tensor) -> FixedPointChecks:
    """Everything the fixed-point, stability and roughness claims need (see :class:`FixedPointChecks`)."""
    pop, slopes = _check_rows(task, w, slope)
    a = a_matrix(pop, w, slopes)
    eig = torch.linalg.eigvalsh(a)
    rq = torch.einsum("bp,bpq,bq->b", w, a, w)
    q = tangent_basis(w)
    a_tan = q.transpose(1, 2) @ a @ q
    jt = tangent_jacobian(pop, w, slopes)
    rough = roughness_matrix(pop, w, slopes)
    sym = 0.5 * (jt + jt.transpose(1, 2))
    eye = torch.eye(w.shape[1] - 1, dtype=w.dtype)
    model = a_tan - rq[:, None, None] * eye + rough
    return FixedPointChecks(
        residual=fixed_point_residual(pop, w, slopes),
        rayleigh=rq,
        lam_max=eig[:, -1],
        lam_2=eig[:, -2],
        top_gap=(eig[:, -1] - rq) / eig[:, -1],
        tangent_max=torch.linalg.eigvalsh(sym)[:, -1],
        asymmetry=(jt - jt.transpose(1, 2)).norm(dim=(1, 2)) / jt.norm(dim=(1, 2)),
        gap=rq - torch.linalg.eigvalsh(a_tan)[:, -1],
        roughness=torch.linalg.matrix_norm(rough, ord=2),
        decomposition_error=(jt - model).norm(dim=(1, 2)) / jt.norm(dim=(1, 2)),
    )


def empirical_a_matrix(x1: Tensor, x2: Tensor, w: Tensor, slope: float) -> Tensor:
    """Finite-sample ``A(w) = C_alpha[x~_w]`` with uniform alpha, for comparison with :func:`a_matrix`.

    x1, x2: ``[N, d]`` the two views; w: ``[B, d]``; returns ``[B, d, d]``. Piecewise constant in
    ``w`` (it changes only when a sample crosses a gate boundary). Gated inputs
    from :func:`nlcl_utils.engine.activations.gated_input`; uniform alpha applied in closed form (equal
    to :func:`nlcl_utils.engine.alpha_cl.contrastive_covariance` with ``uniform_alpha``, see the tests).
    """

    if x1.shape != x2.shape or x1.dim() != 2:
        raise ValueError(
            f"x1, x2: expected two [N, d] tensors of equal shape, got {tuple(x1.shape)}, {tuple(x2.shape)}"
        )
    act = activations.get_activation("leaky_relu", slope=slope)
    a1 = activations.gated_input(x1.expand(w.shape[0], *x1.shape), w, act)
    a2 = activations.gated_input(x2.expand(w.shape[0], *x2.shape), w, act)
    n = x1.shape[0]
    # Uniform alpha = 1/(N(N-1)) off the diagonal, in closed form (no [N, N] matrix):
    # sum_{i != j} alpha (a_i - a_j)(a_i - a_j)^T = 2 * unbiased covariance, and beta_i = 1/N.
    # tests/test_dynamics.py checks this equals alpha_cl.contrastive_covariance(uniform_alpha).
    mean = a1.mean(1, keepdim=True)
    inter = 2 * (a1 - mean).transpose(1, 2) @ (a1 - mean) / (n - 1)
    diff = a1 - a2
    return inter - diff.transpose(1, 2) @ diff / n
