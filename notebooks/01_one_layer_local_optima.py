# %% [markdown]
# # 01 · One layer: nonlinearity creates many local optima
#
# **Claim.** For a one-layer node $f = h(w^\top x)$ trained contrastively on clustered data, a
# ReLU (or LeakyReLU with a small slope) has one stable optimum per cluster, while a linear
# node has a single one (up to sign), the top eigenvector of $C_\alpha[x]$; many nodes from
# random inits find many clusters, as a coupon collector would.
#
# What this notebook shows (`../shared/PAPER.md` §3):
#
# 1. **Data**: a mixture of $C$ Gaussian components in $\mathbb R^d$ whose centres are the
#    vertices of a regular simplex (pairwise cosine $-1/(C-1)$), one *major* component with a
#    larger magnitude; the two views of a sample are independent draws from its component.
# 2. **Population dynamics** with uniform α, in float64, with *exact* Gaussian moments:
#    $A(w) = C_\alpha[\tilde x_w] = 2\sum_c \pi_c (m_c - \bar m)(m_c - \bar m)^\top$ with
#    $m_c(w) = E[h'(w^\top x)\,x \mid c]$ in closed form (truncated-Gaussian moments, see
#    `nlcl_utils.dynamics`). The flow $\dot w = (I - ww^\top)A(w)w$ is integrated from many
#    random inits for linear, ReLU and a sweep of LeakyReLU slopes; converged $w^*$ are
#    clustered into distinct optima and checked to be stable fixed points whose eigenvalue is
#    the top one. Exact moments make $A(w)$ smooth, so fixed points are exact to rounding and
#    the Jacobian comes from autograd (a finite sample would make $A$ piecewise constant).
# 3. **From ReLU to linear**: the number of optima against the LeakyReLU slope.
# 4. **Basins** on the sphere for $d = 3$.
# 5. **Real training**: one-layer networks of $n$ nodes trained with SGD (uniform-α quadratic
#    loss and InfoNCE), many seeds batched; coverage of the components against $n$ with the
#    coupon-collector prediction from the measured basin sizes.
# 6. **Overlap**: what happens when the components overlap more.
#
# Inits everywhere are the directions of PyTorch's default `nn.Linear` init (uniform in a
# box), so that the flow's basin sizes are those of the trained networks' nodes.

# %%
import math

import torch

torch.set_num_threads(1)
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from nlcl_utils import claims, params, plotting
from nlcl_utils import dynamics as dy
from nlcl_utils import optima as op
from nlcl_utils.data.mixture import make_mixture
from nlcl_utils.models import OneLayerNet
from nlcl_utils.progress import bar
from nlcl_utils.train import train

# %% tags=["parameters"]
n_components = 8  # C, number of mixture components (patterns)
dim = 16  # d, input dimension
noise = 0.1  # within-component standard deviation (the augmentation)
major_magnitude = 1.5  # norm of component 0's centre (the major pattern); the others have norm 1
task_seed = 0  # draws the rotation of the simplex
n_inits = 1000  # random inits of the population flow, per slope
slopes = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0]  # LeakyReLU slopes: 0 is ReLU, 1 is linear
flow_dt = 0.5  # Euler step of the flow, in units of 1 / lambda_max(A_linear)
flow_tol = 1e-10  # stop a trajectory when its relative fixed-point residual is below this
flow_max_steps = 20000  # cap on Euler steps
cos_threshold = 0.99  # "same optimum" and "captures a component" mean a cosine at least this
basin_components = 4  # C for the basin map in three dimensions (a tetrahedron)
basin_grid = 120  # longitude points of the basin map (latitude: half as many)
overlap_noises = [0.5, 1.0, 2.0]  # larger within-component spreads (simplex layout), ReLU
overlap_random_noises = [0.1, 0.5]  # random (positively overlapping) centre directions, ReLU
widths = [1, 2, 4, 8, 16, 32, 64]  # n, nodes of the trained one-layer networks
n_seeds = 8  # trained networks per (loss, activation, width), batched as replicas
train_losses = ["quadratic", "infonce"]  # uniform-alpha loss and InfoNCE
train_steps = 1000  # SGD steps
batch_size = 128
lr = 0.04  # SGD step on the paper-form loss (quadratic, or tau * InfoNCE cross-entropy)
momentum = 0.9
weight_decay = 0.0  # with weight normalization, decay only shrinks the raw norm
tau_per_node = 0.5  # InfoNCE temperature: tau_per_node * n
seed = 0  # inits of the flow and seeds of the trained networks

# %%
SPEC = {
    "n_components": params.Int(min=2),
    "dim": params.Int(min=2),
    "noise": params.Float(min=0.0, min_exclusive=True),
    "major_magnitude": params.Float(min=0.0, min_exclusive=True),
    "task_seed": params.Int(min=0),
    "n_inits": params.Int(min=1),
    "slopes": params.List(params.Float(min=0.0, max=1.0), min_len=2),
    "flow_dt": params.Float(min=0.0, min_exclusive=True),
    "flow_tol": params.Float(min=0.0, min_exclusive=True),
    "flow_max_steps": params.Int(min=1),
    "cos_threshold": params.Float(min=0.0, max=1.0, min_exclusive=True),
    "basin_components": params.Int(min=2, max=4),
    "basin_grid": params.Int(min=4),
    "overlap_noises": params.List(params.Float(min=0.0, min_exclusive=True), min_len=0),
    "overlap_random_noises": params.List(params.Float(min=0.0, min_exclusive=True), min_len=0),
    "widths": params.List(params.Int(min=1)),
    "n_seeds": params.Int(min=2),
    "train_losses": params.List(params.Choice("quadratic", "infonce")),
    "train_steps": params.Int(min=1),
    "batch_size": params.Int(min=2),
    "lr": params.Float(min=0.0, min_exclusive=True),
    "momentum": params.Float(min=0.0, max=1.0, max_exclusive=True),
    "weight_decay": params.Float(min=0.0),
    "tau_per_node": params.Float(min=0.0, min_exclusive=True),
    "seed": params.Int(min=0),
}
P = params.validate(globals(), SPEC)
if 0.0 not in P.slopes or 1.0 not in P.slopes:
    raise params.ParameterError(f"parameter 'slopes': must contain 0.0 (ReLU) and 1.0 (linear), got {P.slopes}")
if P.dim < P.n_components - 1:
    raise params.ParameterError(
        f"parameter 'dim': the simplex layout needs dim >= n_components - 1 = {P.n_components - 1}, got {P.dim}"
    )
FIG_DIR = plotting.figure_dir("01_one_layer_local_optima")
plotting.set_theme()
DT = torch.float64
ANGLE_THRESHOLD = math.degrees(math.acos(P.cos_threshold))  # 8.1 degrees for 0.99
SLOPES = sorted(set(P.slopes))

# %% [markdown]
# ## 1. The data
#
# Centre $c$ is $r_c u_c$ with $u_c$ the simplex directions, $r_0$ = `major_magnitude`,
# $r_{c>0} = 1$, equal weights. The negative mutual cosines let the ReLU gate of one centre
# shut out every other component, up to Gaussian tails of size $\Phi(-r/((C-1)\sigma))$.
# For the linear node, $A = 2\,\mathrm{Cov}(\text{centre})$ is constant; with equal
# magnitudes it would be isotropic on the simplex's span, and the larger $r_0$ makes the
# major direction its top eigenvector.

# %%
task = make_mixture(
    P.n_components, P.dim, P.noise, magnitudes=[P.major_magnitude] + [1.0] * (P.n_components - 1), seed=P.task_seed
)
unit_centres = task.centres / task.centres.norm(dim=1, keepdim=True)
a_linear = 2 * task.between_covariance()
lin_eig, lin_vec = torch.linalg.eigh(a_linear)
top_linear = lin_vec[:, -1]
cos_units = unit_centres @ unit_centres.T
print(f"C = {task.n_components}, d = {task.dim}, sigma = {task.noise:g}")
print(f"cosine between centre directions: {cos_units[0, 1].item():.4f} (= -1/(C-1) = {-1 / (P.n_components - 1):.4f})")
print(
    f"A_linear: top eigenvalues {lin_eig[-1]:.4f}, {lin_eig[-2]:.4f}; |cos(top eigenvector, major centre)| = {abs(top_linear @ unit_centres[0]):.6f}"
)
print(
    f"largest other-component gate leak Phi(-1/((C-1) sigma)) = {torch.special.ndtr(torch.tensor(-1 / ((P.n_components - 1) * P.noise))).item():.2e}"
)


# %% [markdown]
# ## 2. Population flow from many inits, every slope at once
#
# All `n_inits` × `len(slopes)` trajectories are one batch (each row has its own slope); the
# same inits are used for every slope. A trajectory stops when its relative residual
# $\|(I-ww^\top)A(w)w\| / \|A(w)w\|$ is below `flow_tol`.


# %%
def default_init_directions(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """Directions of PyTorch's default Linear init (uniform in a box), float64 [n, d]."""
    w = torch.rand(n, d, generator=gen, dtype=DT) * 2 - 1
    return w / w.norm(dim=1, keepdim=True)


def run_flow(task, w0, slopes, progress=True):
    """Flow every init for every slope; returns the endpoints [S, n, d] and the FlowResult."""
    s = torch.tensor(slopes, dtype=DT).repeat_interleave(w0.shape[0])
    res = dy.integrate_flow(
        task, w0.repeat(len(slopes), 1), s, dt=P.flow_dt, tol=P.flow_tol, max_steps=P.flow_max_steps, progress=progress
    )
    return res, s


gen_init = torch.Generator().manual_seed(P.seed)
w0 = default_init_directions(P.n_inits, P.dim, gen_init)
flow, flow_slopes = run_flow(task, w0, SLOPES)
fp = dy.fixed_point_checks(task, flow.w, flow_slopes)
print(
    f"{flow.w.shape[0]} trajectories, converged: {int(flow.converged.sum())}, max steps used: {int(flow.steps.max())}"
)
print(
    f"max residual {fp['residual'].max():.1e}, max |rayleigh - lam_max| / lam_max {fp['top_gap'].abs().max():.1e}, "
    f"max tangent eigenvalue {fp['tangent_max'].max():.4f}, max Jacobian asymmetry {fp['asymmetry'].max():.1e}"
)

# %% [markdown]
# ### Distinct optima per slope
#
# Converged $w^*$ with cosine $\ge$ `cos_threshold` are one optimum. For the linear node
# $w$ and $-w$ are the same solution (its energy is even), so it is clustered sign-aware; for
# slopes below 1 they are different solutions and the plain cosine is used. Both counts are
# listed for every slope.

# %%
rows, optima_by_slope = [], {}
for i, a in enumerate(SLOPES):
    ws = flow.w[i * P.n_inits : (i + 1) * P.n_inits]
    linear = a == 1.0
    cl = op.cluster_directions(ws, P.cos_threshold, sign_aware=linear)
    cl_sign = op.cluster_directions(ws, P.cos_threshold, sign_aware=True)
    match = op.match_to_centres(cl.directions, task.centres, sign_aware=linear)
    part = {k: v[i * P.n_inits : (i + 1) * P.n_inits] for k, v in fp.items()}
    centre_best = op.best_cosine_to_centres(cl.directions, task.centres, sign_aware=linear)  # [C]
    optima_by_slope[a] = (cl, match)
    rows.append(
        {
            "slope": a,
            "optima": cl.n,
            "optima up to sign": cl_sign.n,
            "centres within angle": int((centre_best >= P.cos_threshold).sum()),
            "max angle to nearest centre": float(match.angle.max()),
            "max centre-to-optimum angle": float(torch.rad2deg(torch.arccos(centre_best.clamp(max=1.0))).max()),
            "max cluster spread (deg)": cl.max_spread(ws, sign_aware=linear),
            "max tangent eig": float(part["tangent_max"].max()),
            "min eigengap lam1-lam2": float((part["lam_max"] - part["lam_2"]).min()),
        }
    )
sweep = pd.DataFrame(rows)
print(sweep.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# %%
relu_cl, relu_match = optima_by_slope[0.0]
lin_cl, lin_match = optima_by_slope[1.0]
relu_centre_cos = op.best_cosine_to_centres(relu_cl.directions, task.centres)  # [C]
relu_centre_angle = torch.rad2deg(torch.arccos(relu_centre_cos.clamp(max=1.0)))
lin_top_cos = abs(float(lin_cl.directions[0] @ top_linear))
print(
    f"linear: {lin_cl.n} optimum up to sign; |cos| with the top eigenvector of C_alpha[x] = {lin_top_cos:.12f}; "
    f"nearest centre {int(lin_match.centre[0])} (major = 0) at |cos| {float(lin_match.cosine[0]):.6f}"
)
print(
    f"ReLU: {relu_cl.n} optima; angle from each centre to its nearest optimum (deg): "
    + ", ".join(f"{v:.2f}" for v in relu_centre_angle.tolist())
)
print(
    "ReLU basin sizes by matched centre: "
    + ", ".join(f"c{int(c)}: {f:.3f}" for c, f in zip(relu_match.centre.tolist(), relu_cl.fractions.tolist()))
)
extra = relu_cl.n - int((relu_match.angle <= ANGLE_THRESHOLD).sum())
print(f"ReLU optima farther than {ANGLE_THRESHOLD:.1f} deg from every centre: {extra}")

# %% [markdown]
# ## 3. Basins on the sphere (d = 3)
#
# The same construction with $C$ = `basin_components` centres in $\mathbb R^3$ (a tetrahedron:
# pairwise cosine $-1/3$), the major one again of magnitude `major_magnitude`. Every point of a
# longitude–latitude grid is an init, coloured by the centre its ReLU optimum matches; the
# linear node splits the sphere into two hemispheres ($\pm$ the top eigenvector). Basin sizes
# are fractions of `n_inits` default-init directions.

# %%
task3 = make_mixture(
    P.basin_components, 3, P.noise, magnitudes=[P.major_magnitude] + [1.0] * (P.basin_components - 1), seed=P.task_seed
)
n_lon, n_lat = P.basin_grid, max(P.basin_grid // 2, 2)
lon = torch.linspace(-math.pi, math.pi, n_lon + 1, dtype=DT)[:-1] + math.pi / n_lon
lat = torch.linspace(-math.pi / 2, math.pi / 2, n_lat + 1, dtype=DT)[:-1] + math.pi / (2 * n_lat)
glat, glon = torch.meshgrid(lat, lon, indexing="ij")
grid = torch.stack([glat.cos() * glon.cos(), glat.cos() * glon.sin(), glat.sin()], -1).reshape(-1, 3)
w0_3 = default_init_directions(P.n_inits, 3, gen_init)
starts = torch.cat([grid, w0_3])
flow3, slopes3 = run_flow(task3, starts, [0.0, 1.0], progress=False)
fp3 = dy.fixed_point_checks(task3, flow3.w, slopes3)
ng = grid.shape[0]
relu3, lin3 = flow3.w[: ng + P.n_inits], flow3.w[ng + P.n_inits :]
m3 = op.match_to_centres(relu3, task3.centres)
label3 = torch.where(m3.cosine >= P.cos_threshold, m3.centre, torch.tensor(-1))  # -1: no centre
top3 = torch.linalg.eigh(task3.between_covariance())[1][:, -1]
sign3 = torch.sign(lin3 @ top3)
cl3 = op.cluster_directions(relu3[ng:], P.cos_threshold)
basins3 = op.component_basins(relu3[ng:], task3.centres, P.cos_threshold)
print(
    f"d = 3: {int(flow3.converged.sum())}/{flow3.w.shape[0]} converged; ReLU optima: {cl3.n}; linear optima up to sign: "
    f"{op.cluster_directions(lin3[ng:], P.cos_threshold, sign_aware=True).n}"
)
print(
    "d = 3 ReLU basin sizes: "
    + ", ".join(f"c{c}: {v:.3f}" for c, v in enumerate(basins3.tolist()))
    + f"  (sum {basins3.sum():.3f})"
)


# %% [markdown]
# ## 4. Real training: networks of n nodes, SGD, many seeds
#
# `OneLayerNet` from `nlcl_utils.models`: $f_j = h(\hat w_j^\top x)$ with weight
# normalization ($\|\hat w_j\| = 1$, the constraint of the flow), no output normalization.
# For each loss, activation and width $n$, `n_seeds` networks are trained as one batch of
# replicas (each with its own init and data stream). Two losses:
#
# * **quadratic** (uniform α): the energy is a sum over nodes, so nodes are independent and each
#   follows a noisy version of the flow above — the coupon-collector prediction applies as is;
# * **InfoNCE** (as in the paper): α couples the nodes. Its temperature grows with the width,
#   $\tau = $ `tau_per_node` $\cdot n$, because the squared output distances are sums over
#   nodes; the SGD step is taken on the paper-form loss $\tau\cdot$(cross-entropy), i.e. the
#   engine's cross-entropy with learning rate `lr`$\cdot\tau$.
#
# A network *captures* component $l$ if one of its nodes has cosine $\ge$ `cos_threshold` with
# centre $l$ (sign-aware for linear). The prediction uses the basin sizes $p_l$ of the ReLU
# flow (slope 0): coverage $= \frac1C\sum_l [1-(1-p_l)^n]$.

# %%
p_basin = op.component_basins(flow.w[: P.n_inits], task.centres, P.cos_threshold)  # slope 0 block comes first
prediction = op.coverage_prediction(p_basin, P.widths)
pred_var = op.coverage_variance(p_basin, P.widths)
print("flow basin sizes p_l: " + ", ".join(f"{v:.3f}" for v in p_basin.tolist()) + f"  (sum {p_basin.sum():.3f})")
print(f"expected width to capture every component (coupon collector): {op.expected_width_to_cover_all(p_basin):.1f}")


def train_width(loss: str, activation: str, n: int):
    """Train n_seeds networks of n nodes; returns their unit node directions [R, n, d] (float64)."""
    seeds = [P.seed * 1_000_003 + r for r in range(P.n_seeds)]
    tau = P.tau_per_node * n
    net = OneLayerNet.init(
        seeds, n, P.dim, activation=activation, weight_norm=True, normalize_output=False, loss=loss, tau=tau
    )
    step = P.lr * tau if loss == "infonce" else P.lr
    res = train(
        net,
        task.sampler(seeds, P.batch_size),
        P.train_steps,
        lr=step,
        momentum=P.momentum,
        weight_decay=P.weight_decay,
        progress=False,
    )
    if bool(res.nan.any()):
        raise FloatingPointError(f"{loss}/{activation}/n={n}: {int(res.nan.sum())} replicas hit a non-finite loss")
    w = net.effective_weights().to(DT)
    return w / w.norm(dim=-1, keepdim=True)


runs = [(loss, act, n) for loss in P.train_losses for act in ("relu", "linear") for n in P.widths]
train_rows = []
for loss, act, n in bar(runs, desc="train"):
    w = train_width(loss, act, n)
    linear = act == "linear"
    captured = op.best_cosine_to_centres(w, task.centres, sign_aware=linear) >= P.cos_threshold  # [R, C]
    at_centre = (
        op.best_cosine_to_centres(w.reshape(-1, 1, P.dim), task.centres, sign_aware=linear).max(-1).values
        >= P.cos_threshold
    )
    top_cos = (w @ top_linear).abs()  # [R, n]
    train_rows.append(
        {
            "loss": loss,
            "activation": act,
            "n": n,
            "coverage": captured.to(DT).mean().item(),
            "coverage_se": (captured.to(DT).mean(1).std() / math.sqrt(P.n_seeds)).item(),
            "nodes at a centre": at_centre.to(DT).mean().item(),
            "min |cos| to top eigvec": top_cos.min().item(),
            "median |cos| to top eigvec": top_cos.median().item(),
        }
    )
trained = pd.DataFrame(train_rows)
pred_by_n = dict(zip(P.widths, prediction.tolist()))
se_by_n = dict(zip(P.widths, (pred_var / P.n_seeds).sqrt().tolist()))
trained["prediction"] = trained.n.map(pred_by_n)
# The coupon-collector prediction is for ReLU nodes; a linear node has one optimum (z left empty).
is_relu = trained.activation == "relu"
trained["z"] = ((trained.coverage - trained.prediction) / trained.n.map(se_by_n)).where(is_relu)
trained.loc[~is_relu, "prediction"] = float("nan")
print(trained.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %% [markdown]
# ## 5. Overlapping components
#
# Larger within-component spread (simplex layout), and centres in random directions (positive
# cosines are possible, so a gate around one centre lets in others). ReLU flows from the same
# inits. For each setting: distinct optima, how many centres have an optimum within
# `cos_threshold`, the largest angle between an optimum and its nearest centre, the fraction of
# converged $w^*$ whose Rayleigh quotient is *not* the top eigenvalue of $A(w^*)$, and the
# largest tangent eigenvalue (stability).

# %%
overlap_settings = (
    [("simplex", P.noise)]
    + [("simplex", s) for s in P.overlap_noises]
    + [("random", s) for s in P.overlap_random_noises]
)
overlap_rows = []
for layout, sigma in bar(overlap_settings, desc="overlap"):
    t = make_mixture(
        P.n_components,
        P.dim,
        sigma,
        magnitudes=[P.major_magnitude] + [1.0] * (P.n_components - 1),
        layout=layout,
        seed=P.task_seed,
    )
    res = dy.integrate_flow(t, w0, 0.0, dt=P.flow_dt, tol=P.flow_tol, max_steps=P.flow_max_steps)
    chk = dy.fixed_point_checks(t, res.w, 0.0)
    cl = op.cluster_directions(res.w[res.converged], P.cos_threshold)
    mt = op.match_to_centres(cl.directions, t.centres)
    best = op.best_cosine_to_centres(cl.directions, t.centres)
    overlap_rows.append(
        {
            "layout": layout,
            "sigma": sigma,
            "converged": int(res.converged.sum()),
            "optima": cl.n,
            "centres within angle": int((best >= P.cos_threshold).sum()),
            "max angle to nearest centre": float(mt.angle.max()),
            "not top eigenvector": float((chk["top_gap"][res.converged] > 1e-6).to(DT).mean()),
            "max top_gap": float(chk["top_gap"][res.converged].max()),
            "max tangent eig": float(chk["tangent_max"][res.converged].max()),
        }
    )
overlap = pd.DataFrame(overlap_rows)
print(overlap.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# %% [markdown]
# ## Claims
#
# Thresholds: 1e-6 for the fixed-point residual and the Rayleigh quotient (the issue);
# stability means a negative largest tangent eigenvalue (0 is the theory's boundary); "near a
# centre" is the clustering resolution `cos_threshold` (angle 8.1° for 0.99). The trained
# quadratic-loss coverage is compared with the coupon-collector prediction through its
# z-score, $(\text{measured} - \text{predicted}) / \text{SE}$ with the SE of the mean over
# `n_seeds` networks under the independent-node model; $|z| \le 3$ at every width.

# %%
quad = trained[trained.loss == "quadratic"] if "quadratic" in P.train_losses else None
infonce = trained[trained.loss == "infonce"] if "infonce" in P.train_losses else None

checks = claims.Claims("01_one_layer_local_optima")
checks.check("every flow trajectory converged", int(flow.converged.sum()), flow.w.shape[0], "==")
checks.check("fixed-point residual |(I-ww^T)Aw|/|Aw| (max over all w*)", fp["residual"].max(), 1e-6, "<=")
checks.check("Rayleigh quotient = lambda_max(A(w*)) (max relative gap)", fp["top_gap"].abs().max(), 1e-6, "<=")
checks.check("every w* stable: max tangent Jacobian eigenvalue", fp["tangent_max"].max(), 0.0, "<")
checks.check("linear: number of optima up to sign", lin_cl.n, 1, "==")
checks.check("linear optimum = top eigenvector of C_alpha[x]: 1 - |cos|", 1 - lin_top_cos, 1e-6, "<=")
checks.check("linear optimum's nearest centre is the major one (index)", int(lin_match.centre[0]), 0, "==")
checks.check("ReLU: number of distinct optima", relu_cl.n, P.n_components, ">=")
checks.check(
    "ReLU: max angle from a centre to its nearest optimum (deg)", relu_centre_angle.max(), ANGLE_THRESHOLD, "<="
)
checks.check("d=3 ReLU: number of distinct optima", cl3.n, P.basin_components, ">=")
checks.check("d=3: fixed-point residual (max)", fp3["residual"].max(), 1e-6, "<=")
if quad is not None:
    q_relu, q_lin = quad[quad.activation == "relu"], quad[quad.activation == "linear"]
    checks.check("trained, quadratic, ReLU: coverage vs coupon collector, max |z|", q_relu.z.abs().max(), 3.0, "<=")
    checks.check(
        "trained, quadratic, linear: min |cos| of a node with the top eigenvector",
        q_lin["min |cos| to top eigvec"].min(),
        P.cos_threshold,
        ">=",
    )
if infonce is not None:
    i_relu, i_lin = infonce[infonce.activation == "relu"], infonce[infonce.activation == "linear"]
    checks.finding(
        "trained, InfoNCE, ReLU: coverage vs coupon collector, max |z|",
        float(i_relu.z.abs().max()),
        expected="coupon-collector curve only for independent nodes (uniform alpha)",
        note="InfoNCE's alpha couples the nodes, so the curve is a reference here; |z| <= 3 means "
        "the coupling did not measurably change coverage at this temperature",
    )
    checks.finding(
        "trained, InfoNCE, linear: min |cos| of a node with the top eigenvector",
        float(i_lin["min |cos| to top eigvec"].min()),
        expected=f">= {P.cos_threshold} (all nodes in the major direction)",
        note="with alpha recomputed from the outputs, C_alpha[x]'s top eigenvector is not the uniform-alpha "
        "one and depends on the other nodes: linear nodes spread over several directions",
    )
random_rows = overlap[overlap.layout == "random"]
if len(random_rows):
    checks.finding(
        "overlap (random layout): fraction of stable w* that are not top eigenvectors",
        float(random_rows["not top eigenvector"].max()),
        expected="0 (stable fixed point <=> top eigenvalue, in PAPER.md's reading)",
        note="with overlapping gates A(w) varies fast around w*; stability only needs the tangent "
        "Jacobian to be negative, which the variation of A can give without the top eigenvalue",
    )
checks.report()
checks.save(FIG_DIR)
checks.assert_all()

# %% [markdown]
# ## Figures

# %%
# Figure 1: distinct optima against the centres, for linear, one LeakyReLU slope and ReLU.
mid_slope = min((a for a in SLOPES if 0 < a < 1), key=lambda a: abs(a - 0.5), default=None)
panel_slopes = [1.0] + ([mid_slope] if mid_slope is not None else []) + [0.0]
fig, axes = plt.subplots(
    1,
    len(panel_slopes),
    figsize=plotting.FIGSIZE["wide"],
    gridspec_kw={"width_ratios": [max(optima_by_slope[a][0].n, 3) + 1 for a in panel_slopes]},
)
for ax, a in zip(np.atleast_1d(axes), panel_slopes):
    cl, match = optima_by_slope[a]
    order = torch.argsort(match.centre * 2 - (match.cosine > 0).long(), stable=True)  # columns by matched centre
    cos = cl.directions[order] @ unit_centres.T
    cos = cos.abs() if a == 1.0 else cos
    sns.heatmap(
        cos.T.numpy(),
        ax=ax,
        vmin=-1,
        vmax=1,
        cmap="vlag",
        cbar=a == 0.0,
        xticklabels=[f"{f:.2f}" for f in cl.fractions[order].tolist()],
        yticklabels=[f"c{c}" for c in range(task.n_components)],
    )
    name = "linear (|cos|)" if a == 1.0 else ("ReLU" if a == 0.0 else f"LeakyReLU {a:g}")
    ax.set_title(f"{name}: {cl.n} optim{'um' if cl.n == 1 else 'a'}")
    ax.set_xlabel("optimum (label: basin size)")
    ax.tick_params(axis="x", labelrotation=90)
np.atleast_1d(axes)[0].set_ylabel("component centre")
fig.suptitle("Cosine between each distinct optimum and each centre (c0 = major)", y=1.02)
plotting.savefig(fig, FIG_DIR, "optima_per_activation")

# %% [markdown]
# Each column is one distinct optimum of the flow, labelled by its basin size (fraction of
# inits). ReLU: one optimum per centre (cosine 1 on one row), the major centre with the largest
# basin. Linear: a single optimum, the major centre. The middle panel shows an intermediate
# slope: still one optimum per centre, but the minor ones are tilted away from their centres.
# With these well-separated components the ReLU has no extra optima (none lies between
# components; the printout above counts those farther than 8.1° from every centre); extra,
# in-between optima appear once gates overlap (section 5).

# %%
# Figure 2: slope sweep.
fig, axes = plt.subplots(1, 3, figsize=plotting.FIGSIZE["wide"], layout="constrained")
ax = axes[0]
ax.plot(sweep.slope, sweep.optima, "o-", color=plotting.COLORS["relu"], label="distinct optima")
ax.plot(sweep.slope, sweep["optima up to sign"], "s--", color=plotting.COLORS["linear"], label="up to sign")
ax.axhline(P.n_components, color=plotting.COLORS["theory"], lw=0.8, ls=":", label=f"C = {P.n_components}")
ax.set_xlabel("LeakyReLU slope (0: ReLU)")
ax.set_ylabel("number of optima")
ax.legend(fontsize="small")
ax = axes[1]
ax.plot(sweep.slope, sweep["max centre-to-optimum angle"], "o-", color=plotting.COLORS["relu"])
ax.axhline(
    ANGLE_THRESHOLD,
    color=plotting.COLORS["theory"],
    lw=0.8,
    ls=":",
    label=f"{ANGLE_THRESHOLD:.1f}° (cos {P.cos_threshold:g})",
)
ax.set_yscale("log")
ax.set_xlabel("LeakyReLU slope")
ax.set_ylabel("angle to nearest optimum (deg)")
ax.set_title("worst-placed centre", fontsize="medium")
ax.legend(fontsize="small")
ax = axes[2]
ax.plot(
    sweep.slope,
    -sweep["max tangent eig"],
    "o-",
    color=plotting.COLORS["relu"],
    label="stability margin (least stable $w^*$)",
)
ax.plot(
    sweep.slope,
    sweep["min eigengap lam1-lam2"],
    "s--",
    color=plotting.COLORS["leaky_relu"],
    label=r"smallest gap $\lambda_1-\lambda_2$ of $A(w^*)$",
)
ax.set_xlabel("LeakyReLU slope")
ax.set_ylim(0, 1.4 * max(float((-sweep["max tangent eig"]).max()), float(sweep["min eigengap lam1-lam2"].max())))
ax.legend(fontsize="x-small", loc="upper center")
plotting.savefig(fig, FIG_DIR, "slope_sweep")

# %% [markdown]
# Left: the ReLU's $C$ optima survive up to a critical slope, then all but the major
# direction vanish (the two remaining points for slopes just below 1 are $\pm$ the major
# direction, which only the linear node identifies). Why: the gate's contrast between the two
# sides shrinks like $1 - \text{slope}$, so the $w$-dependent part of $A(w)$ that makes each
# centre its own top eigenvector shrinks, while the constant linear part (whose top
# eigenvector is the major pattern) does not; the minor optima drift toward it, their
# eigengap and stability margin (right) fall to zero, and they merge into saddles. The middle
# panel shows the drift: the worst centre's nearest optimum moves from a fraction of a degree
# (ReLU) past the 8.1° resolution before the minor optima disappear.

# %%
# Figure 3: basin map for d = 3.
fig, axes = plt.subplots(1, 2, figsize=plotting.FIGSIZE["wide"], sharey=True)
colors = [plotting.PALETTE[c] for c in range(P.basin_components)] + [plotting.COLORS["other"]]
cmap = plt.matplotlib.colors.ListedColormap(colors)
img = torch.where(label3[:ng] < 0, torch.tensor(P.basin_components), label3[:ng]).reshape(n_lat, n_lon)
extent = [-180, 180, -90, 90]
axes[0].imshow(
    img.numpy(),
    origin="lower",
    extent=extent,
    cmap=cmap,
    vmin=-0.5,
    vmax=P.basin_components + 0.5,
    interpolation="nearest",
    aspect="auto",
)
cen = task3.centres / task3.centres.norm(dim=1, keepdim=True)
c_lon, c_lat = torch.rad2deg(torch.atan2(cen[:, 1], cen[:, 0])), torch.rad2deg(torch.asin(cen[:, 2]))
for c in range(P.basin_components):
    axes[0].scatter(c_lon[c], c_lat[c], marker="*", s=160, color=colors[c], edgecolor="black", zorder=3)
    axes[0].annotate(
        f"c{c}: {basins3[c]:.2f}",
        (c_lon[c].item(), c_lat[c].item()),
        xytext=(6, 6),
        textcoords="offset points",
        fontsize="small",
    )
axes[0].set_title(f"ReLU: {cl3.n} optima (star: centre, label: basin size)")
sgn = sign3[:ng].reshape(n_lat, n_lon)
axes[1].imshow(
    sgn.numpy(),
    origin="lower",
    extent=extent,
    cmap=plt.matplotlib.colors.ListedColormap([plotting.COLORS["linear"], plotting.PALETTE[9]]),
    vmin=-1,
    vmax=1,
    interpolation="nearest",
    aspect="auto",
)
t_lon, t_lat = math.degrees(math.atan2(top3[1], top3[0])), math.degrees(math.asin(top3[2]))
for s, mk in ((1, "*"), (-1, "X")):
    lo, la = (t_lon, t_lat) if s > 0 else (t_lon - 180 if t_lon > 0 else t_lon + 180, -t_lat)
    axes[1].scatter(lo, la, marker=mk, s=120, color="white", edgecolor="black", zorder=3)
axes[1].set_title("linear: one optimum up to sign (± top eigenvector)")
for ax in axes:
    ax.set_xlabel("longitude of the init (deg)")
    ax.grid(False)
axes[0].set_ylabel("latitude of the init (deg)")
plotting.savefig(fig, FIG_DIR, "basin_map")

# %% [markdown]
# Every init on the sphere flows to the optimum of the region it starts in. With ReLU the
# sphere is tiled into one basin per centre (the major centre c0 has the largest); with a
# linear node the only boundary is the great circle orthogonal to the top eigenvector, and
# both halves give the same solution up to sign. (Equirectangular map: areas near the poles
# are stretched.)

# %%
# Figure 4: coverage against width, with the coupon-collector prediction.
fig, axes = plt.subplots(1, len(P.train_losses), figsize=plotting.FIGSIZE["wide"], sharey=True, squeeze=False)
dense = np.unique(np.round(np.geomspace(min(P.widths), max(P.widths), 200)).astype(int))
for ax, loss in zip(axes[0], P.train_losses):
    part = trained[trained.loss == loss]
    ax.plot(
        dense,
        op.coverage_prediction(p_basin, dense.tolist()).numpy(),
        color=plotting.COLORS["theory"],
        label="coupon collector from flow basins",
    )
    for act in ("relu", "linear"):
        sub = part[part.activation == act]
        ax.errorbar(
            sub.n,
            sub.coverage,
            yerr=2 * sub.coverage_se,
            fmt="o",
            capsize=3,
            color=plotting.COLORS[act],
            label=f"trained {act} (mean ± 2 SE over seeds)",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("nodes n")
    ax.set_title("quadratic loss (uniform α)" if loss == "quadratic" else f"InfoNCE (τ = {P.tau_per_node:g}·n)")
axes[0][0].set_ylabel("fraction of components captured")
axes[0][0].legend(fontsize="small", loc="upper left")
plotting.savefig(fig, FIG_DIR, "coverage_vs_width")

# %% [markdown]
# ReLU networks capture components as independent coupon draws: the measured coverage with
# the quadratic (uniform-α) loss follows the curve predicted from the flow's basin sizes, with
# nothing fitted. The linear network captures at most the major component whatever its
# width (its nodes all sit on the top eigenvector, which here is the major centre, but
# it is counted only if the cosine clears the threshold). With InfoNCE, see the table above
# and the findings: α couples the nodes, so the independent-node curve is a reference, not a
# prediction.

# %%
# Figure 5: overlap.
fig, axes = plt.subplots(1, 2, figsize=plotting.FIGSIZE["wide"])
labels = [f"{r.layout}\nσ={r.sigma:g}" for r in overlap.itertuples()]
x = np.arange(len(overlap))
axes[0].bar(x - 0.2, overlap.optima, width=0.4, color=plotting.COLORS["relu"], label="distinct optima")
axes[0].bar(
    x + 0.2,
    overlap["centres within angle"],
    width=0.4,
    color=plotting.COLORS["linear"],
    label=f"centres with an optimum within {ANGLE_THRESHOLD:.1f}°",
)
axes[0].axhline(P.n_components, color=plotting.COLORS["theory"], lw=0.8, ls=":")
axes[0].set_xticks(x, labels, fontsize="x-small")
axes[0].legend(fontsize="small")
axes[1].bar(
    x - 0.2,
    overlap["max angle to nearest centre"],
    width=0.4,
    color=plotting.COLORS["relu"],
    label="largest optimum-centre angle (deg)",
)
axes[1].bar(
    x + 0.2,
    100 * overlap["not top eigenvector"],
    width=0.4,
    color=plotting.COLORS["leaky_relu"],
    label="% stable w* not a top eigenvector",
)
axes[1].set_xticks(x, labels, fontsize="x-small")
axes[1].legend(fontsize="small")
plotting.savefig(fig, FIG_DIR, "overlap")

# %% [markdown]
# With a larger spread the ReLU optima stay one per centre but drift away from the centres
# (the gates let in more of the other components). With centres in random directions, some
# pairs have positive cosines: their gates cannot separate them, optima sit between
# components, fewer distinct optima exist, and some stable $w^*$ are eigenvectors of $A(w^*)$
# with a *non-top* eigenvalue — stability there comes from how fast $A(w)$ turns with $w$, not
# from an eigengap, so "stable ⇒ top eigenvalue" is not a law of these dynamics (the paper
# gives gap > roughness as a *sufficient* condition for stability).
