"""One-layer population dynamics under uniform alpha, with exact Gaussian-mixture moments.

Setting (``docs/theory.md`` section 3). One node ``f = h(w^T x)`` with the LeakyReLU
family ``h(u) = u`` for ``u > 0`` and ``slope * u`` otherwise (``slope = 0``: ReLU,
``slope = 1``: linear; homogeneous for every slope, gate ``h'(u) = slope + (1 - slope) 1[u > 0]``).
Data: a :class:`~nlcl_utils.data.mixture.MixtureTask` (centres ``mu_c``, weights ``pi_c``,
isotropic spread ``sigma``; the two views are independent draws from the sample's component).

The matrix ``A(w) = C_alpha[x~_w]`` (uniform alpha, population limit). Uniform alpha over a
batch gives ``C = 2 V[a] - E[(a - a')(a - a')^T]`` (exactly, in expectation over batches; see
:mod:`nlcl_utils.alpha_cl`), which for exchangeable views equals ``2 Cov(a, a')``. Because the
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

Shapes: ``w`` is ``[..., d]`` (any leading replica dims ``B``); ``slope`` is a float or a tensor
broadcasting against ``w.shape[:-1]``. Everything runs in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nlcl_utils import activations
from nlcl_utils import progress as progress_bars
from nlcl_utils.data.mixture import MixtureTask

Tensor = torch.Tensor

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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


def _check_w(task: MixtureTask, w: Tensor) -> None:
    if w.dim() < 1 or w.shape[-1] != task.dim:
        raise ValueError(f"w: expected shape [..., {task.dim}] (the data dimension), got {tuple(w.shape)}")
    if w.dtype != torch.float64:
        raise ValueError(f"w: must be float64 (exact population dynamics), got {w.dtype}")


def _gated_means(task: MixtureTask, w: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
    """Unchecked core of :func:`gated_means` (``a`` already a tensor of shape ``w.shape[:-1]``);
    free of data-dependent control flow so that ``torch.func.vmap`` can batch it."""
    a = a.unsqueeze(-1)  # [..., 1]
    mu = task.centres  # [C, d]
    r = w.norm(dim=-1, keepdim=True)  # [..., 1]
    u = w @ mu.T  # [..., C]
    s = task.noise * r  # [..., 1]
    t = u / s
    cdf = torch.special.ndtr(t)
    pdf = torch.exp(-0.5 * t * t) * _INV_SQRT_2PI
    w_hat = w / r
    m_relu = cdf.unsqueeze(-1) * mu + (task.noise * pdf).unsqueeze(-1) * w_hat.unsqueeze(-2)
    m = a.unsqueeze(-1) * mu + (1 - a).unsqueeze(-1) * m_relu
    g = a * u + (1 - a) * (u * cdf + s * pdf)
    return m, g


def _a_times_w(task: MixtureTask, w: Tensor, a: Tensor) -> Tensor:
    m, g = _gated_means(task, w, a)
    mc = m - torch.einsum("c,...cd->...d", task.weights, m).unsqueeze(-2)
    gc = g - (g @ task.weights).unsqueeze(-1)
    return 2 * torch.einsum("c,...cd,...c->...d", task.weights, mc, gc)


def gated_means(task: MixtureTask, w: Tensor, slope: float | Tensor) -> tuple[Tensor, Tensor]:
    """Per-component gated means: ``m [..., C, d]`` (``E[x~_w | c]``) and ``g [..., C]`` (``E[h(w^T x) | c]``)."""
    _check_w(task, w)
    return _gated_means(task, w, _slope(slope, w.shape[:-1]))


def energy(task: MixtureTask, w: Tensor, slope: float | Tensor) -> Tensor:
    """``E(w) = 1/2 C_alpha[f] = sum_c pi_c (g_c - g)^2``, shape ``[...]``."""
    _, g = gated_means(task, w, slope)
    gc = g - (g @ task.weights).unsqueeze(-1)
    return (gc * gc) @ task.weights


def a_matrix(task: MixtureTask, w: Tensor, slope: float | Tensor) -> Tensor:
    """``A(w) = 2 sum_c pi_c (m_c - m)(m_c - m)^T``, shape ``[..., d, d]`` (symmetric PSD)."""
    m, _ = gated_means(task, w, slope)
    mc = m - torch.einsum("c,...cd->...d", task.weights, m).unsqueeze(-2)
    return 2 * torch.einsum("c,...cp,...cq->...pq", task.weights, mc, mc)


def a_times_w(task: MixtureTask, w: Tensor, slope: float | Tensor) -> Tensor:
    """``A(w) w = 2 sum_c pi_c (m_c - m)(g_c - g)`` without forming ``A``, shape ``[..., d]``."""
    _check_w(task, w)
    return _a_times_w(task, w, _slope(slope, w.shape[:-1]))


def projected_flow(task: MixtureTask, w: Tensor, slope: float | Tensor) -> Tensor:
    """``(I - w w^T) A(w) w`` for unit ``w`` ``[..., d]`` (docs/theory.md section 3; not renormalized)."""
    aw = a_times_w(task, w, slope)
    return aw - (aw * w).sum(-1, keepdim=True) * w


def fixed_point_residual(task: MixtureTask, w: Tensor, slope: float | Tensor) -> Tensor:
    """Relative residual ``|(I - w w^T) A(w) w| / |A(w) w|`` at unit ``w``, shape ``[...]``."""
    aw = a_times_w(task, w, slope)
    proj = aw - (aw * w).sum(-1, keepdim=True) * w
    return proj.norm(dim=-1) / aw.norm(dim=-1)


def linear_time_scale(task: MixtureTask) -> float:
    """``1 / lambda_max(A_linear)`` with ``A_linear = 2 * between_covariance`` (the flow's time unit)."""
    return 1.0 / float(torch.linalg.eigvalsh(2 * task.between_covariance())[-1])


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


def integrate_flow(
    task: MixtureTask,
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
    ``h = dt * linear_time_scale(task)`` (``dt`` is in units of ``1/lambda_max(A_linear)``).
    Every ``check_every`` steps, rows whose relative residual is ``<= tol`` stop; the others go
    on, up to ``max_steps``. ``slope``: float or ``[B]``.
    """
    if w0.dim() != 2 or w0.shape[1] != task.dim:
        raise ValueError(f"w0: expected shape [B, {task.dim}], got {tuple(w0.shape)}")
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
    slopes = _slope(slope, w.shape[:1]).clone()
    h = dt * linear_time_scale(task)
    b = w.shape[0]
    steps = torch.zeros(b, dtype=torch.long)
    active = torch.arange(b)
    bar = progress_bars.bar(total=max_steps, desc="flow", leave=False, progress=progress)
    done = 0
    while done < max_steps and active.numel() > 0:
        n = min(check_every, max_steps - done)
        wa, sa = w[active], slopes[active]
        for _ in range(n):
            aw = _a_times_w(task, wa, sa)
            wa = wa + h * (aw - (aw * wa).sum(-1, keepdim=True) * wa)
            wa = wa / wa.norm(dim=1, keepdim=True)
        w[active] = wa
        steps[active] += n
        done += n
        bar.update(n)
        res = fixed_point_residual(task, wa, sa)
        active = active[res > tol]
    bar.close()
    residual = fixed_point_residual(task, w, slopes)
    return FlowResult(w=w, residual=residual, steps=steps, converged=residual <= tol)


def spectrum(task: MixtureTask, w: Tensor, slope: float | Tensor) -> tuple[Tensor, Tensor]:
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


def tangent_jacobian(task: MixtureTask, w: Tensor, slope: float | Tensor) -> Tensor:
    """Jacobian of ``F(w) = A(w) w - (w^T A(w) w) w`` restricted to the tangent space, ``[B, d-1, d-1]``.

    ``J = dF/dw`` by autograd (``A`` is smooth with exact moments), then ``Q^T J Q`` with ``Q``
    from :func:`tangent_basis`. At a fixed point ``J`` maps tangent vectors to tangent
    vectors (the sphere is invariant), so this is the exact linearization of the flow on the
    sphere; it is symmetric there (Riemannian Hessian of ``E``). ``w``: unit rows ``[B, d]``.
    """
    _check_w(task, w)
    if w.dim() != 2:
        raise ValueError(f"w: expected shape [B, {task.dim}], got {tuple(w.shape)}")
    slopes = _slope(slope, w.shape[:1])

    def flow_one(wi: Tensor, si: Tensor) -> Tensor:
        aw = _a_times_w(task, wi, si)
        return aw - (aw * wi).sum() * wi

    jac = torch.func.vmap(torch.func.jacrev(flow_one), in_dims=(0, 0))(w, slopes)  # [B, d, d]
    q = tangent_basis(w)
    return q.transpose(1, 2) @ jac @ q


def tangent_eigenvalues(task: MixtureTask, w: Tensor, slope: float | Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues of the symmetrized tangent Jacobian ``[B, d-1]`` (ascending) and its relative
    asymmetry ``|J - J^T| / |J|`` ``[B]`` (0 up to rounding at an exact fixed point)."""
    jt = tangent_jacobian(task, w, slope)
    asym = (jt - jt.transpose(1, 2)).norm(dim=(1, 2)) / jt.norm(dim=(1, 2))
    return torch.linalg.eigvalsh(0.5 * (jt + jt.transpose(1, 2))), asym


def fixed_point_checks(task: MixtureTask, w: Tensor, slope: float | Tensor) -> dict[str, Tensor]:
    """Everything the fixed-point claims need, per row of unit ``w`` ``[B, d]`` (each value ``[B]``).

    ``residual``: :func:`fixed_point_residual`; ``rayleigh``: ``w^T A w``; ``lam_max``, ``lam_2``:
    the two largest eigenvalues of ``A(w)``; ``top_gap``: ``(lam_max - rayleigh) / lam_max`` (0 when
    ``w`` is a top eigenvector); ``tangent_max``: largest eigenvalue of the (symmetrized) tangent
    Jacobian (< 0: linearly stable); ``asymmetry``: relative asymmetry of that Jacobian.
    """
    rq, eig = spectrum(task, w, slope)
    tangent, asym = tangent_eigenvalues(task, w, slope)
    return {
        "residual": fixed_point_residual(task, w, slope),
        "rayleigh": rq,
        "lam_max": eig[..., -1],
        "lam_2": eig[..., -2],
        "top_gap": (eig[..., -1] - rq) / eig[..., -1],
        "tangent_max": tangent[..., -1],
        "asymmetry": asym,
    }


def empirical_a_matrix(x1: Tensor, x2: Tensor, w: Tensor, slope: float) -> Tensor:
    """Finite-sample ``A(w) = C_alpha[x~_w]`` with uniform alpha, for comparison with :func:`a_matrix`.

    x1, x2: ``[N, d]`` the two views; w: ``[B, d]``; returns ``[B, d, d]``. Piecewise constant in
    ``w`` (it changes only when a sample crosses a gate boundary). Gated inputs
    from :func:`nlcl_utils.activations.gated_input`; uniform alpha applied in closed form (equal
    to :func:`nlcl_utils.alpha_cl.contrastive_covariance` with ``uniform_alpha``, see the tests).
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
