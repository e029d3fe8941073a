# %% [markdown]
# # 03 · Global modulation: what matters globally is learned locally
#
# **Claim (PAPER.md §4, result 3).** In a two-layer network with receptive fields, the top
# layer reshapes each lower layer's covariance: a filter of RF $k$ is driven by
# $\big(s_k^2\,\mathbb V[\tilde x_k] + \delta_k \Delta_k\Delta_k^\top\big) w_k$ with a boost
# $\delta_k \ge 0$ along the direction $\Delta_k$ that discriminates the *global* classes, a
# boost that grows with the number of *other* RFs carrying global information — so locally
# globally-informative patterns should be learned first / with higher probability.
#
# What this notebook shows:
#
# 1. **The closed form, exactly** (C = 2 global classes, M = 1 ReLU filter per RF, uniform α
#    = plain population covariance, exact moments in float64): it equals autograd's velocity;
#    $\delta_k \ge 0$; $\delta_k$ grows with the number of other informative RFs; and in a
#    frequency-matched toy model the closed-form flow picks the informative token more often
#    exactly when other RFs are informative.
# 2. **The paper's token experiment** (ReLU + BN, InfoNCE, 8 seeds): $\chi^+ \to 1$ and
#    $\chi^- \to 0$ over training, from weight snapshots.
# 3. **Augmentation or global modulation?** Filler-only tokens are less frequent *and* change
#    between the two views. We vary how many wildcards the second view re-draws (down to
#    none) and add a frequency-matched control, to say which part of $\chi^- \to 0$ each
#    explains.
# 4. **Priority**: the step at which a filter first locks on to each (location, token)
#    against how much that token tells about the pattern id.
# 5. **What strengthens or weakens it**: BatchNorm on/off, InfoNCE vs quadratic loss, the
#    number of patterns G.

# %%
import dataclasses

import torch

torch.set_num_threads(1)
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from nlcl_utils import claims, metrics, params, plotting, priority, train
from nlcl_utils import global_modulation as gm
from nlcl_utils.data.tokens import TokenSampler
from nlcl_utils.progress import bar

# %% tags=["parameters"]
# Theory (exact moments, float64)
cf_configs = 256  # random two-class models per closed-form check (a replica dimension)
cf_rfs = 10  # K of the delta-versus-informative-RFs sweep
cf_tokens = 5  # T tokens per RF
cf_dim = 5  # embedding dimension d
enum_rfs = 4  # K of the alpha-CL check on the enumerated joint support (2 T^K points)
enum_tokens = 3  # T of that check
flow_inits = 256  # random filter inits per number of informative RFs (closed-form flow)
flow_rfs = 6  # K of the frequency-matched toy model
flow_tokens = 6  # T (one-hot) of the toy model
flow_freq = 0.2  # frequency c of each informative / matched token
flow_steps = 300  # Euler steps of the normalized flow
flow_lr = 2.0  # Euler step size
# Training (the engine, float32): the paper's main setting
n_seeds = 8
steps = 5000
snapshot_every = 50  # weight snapshots for chi+/chi- curves and lock-on steps
vocab = 20
locations = 10
per_location = 5
patterns = 40
pattern_len = 5
beta = 5.0
redraw_counts = [5, 2, 0]  # wildcards the second view re-draws (5, i.e. all, is the paper)
matched_redraws = [5, 0]  # redraw counts of the frequency-matched control
n_matched = 2  # filler-only tokens per location made as frequent as a pattern token
pattern_counts = [10, 40, 80]  # G sweep
ablations = ["bn_off", "quadratic"]
lock_threshold = 0.9  # "locked on" means best cosine with the token embedding at least this
seed = 0  # first training seed (seeds seed .. seed + n_seeds - 1) and seed of the theory draws

# %%
SPEC = {
    "cf_configs": params.Int(min=1),
    "cf_rfs": params.Int(min=2),
    "cf_tokens": params.Int(min=2),
    "cf_dim": params.Int(min=1),
    "enum_rfs": params.Int(min=2, max=6),
    "enum_tokens": params.Int(min=2, max=4),
    "flow_inits": params.Int(min=1),
    "flow_rfs": params.Int(min=2),
    "flow_tokens": params.Int(min=5),
    "flow_freq": params.Float(min=0.0, max=0.25, min_exclusive=True, max_exclusive=True),
    "flow_steps": params.Int(min=1),
    "flow_lr": params.Float(min=0.0, min_exclusive=True),
    "n_seeds": params.Int(min=1),
    "steps": params.Int(min=1),
    "snapshot_every": params.Int(min=1),
    "vocab": params.Int(min=2),
    "locations": params.Int(min=2),
    "per_location": params.Int(min=1),
    "patterns": params.Int(min=1),
    "pattern_len": params.Int(min=1),
    "beta": params.Float(min=1.0),
    "redraw_counts": params.List(params.Int(min=0), min_len=1),
    "matched_redraws": params.List(params.Int(min=0), min_len=0),
    "n_matched": params.Int(min=1),
    "pattern_counts": params.List(params.Int(min=1), min_len=0),
    "ablations": params.List(params.Choice("bn_off", "quadratic"), min_len=0),
    "lock_threshold": params.Float(min=0.0, max=1.0, min_exclusive=True),
    "seed": params.Int(min=0),
}
P = params.validate(globals(), SPEC)
if P.per_location > P.vocab:
    raise params.ParameterError(f"parameter 'per_location': must be <= vocab = {P.vocab}, got {P.per_location}")
if P.pattern_len >= P.locations:
    raise params.ParameterError(
        f"parameter 'pattern_len': must be < locations = {P.locations} (wildcards needed), got {P.pattern_len}"
    )
WILDCARDS = P.locations - P.pattern_len
for name in ("redraw_counts", "matched_redraws"):
    bad = [r for r in getattr(P, name) if r > WILDCARDS]
    if bad:
        raise params.ParameterError(
            f"parameter {name!r}: each must be in [0, locations - pattern_len = {WILDCARDS}], got {bad}"
        )
FIG_DIR = plotting.figure_dir("03_global_modulation")
plotting.set_theme()
DT = torch.float64
SEEDS = list(range(P.seed, P.seed + P.n_seeds))
PAPER_SCALE = (
    P.steps >= 5000
    and P.n_seeds >= 8
    and (P.vocab, P.locations, P.per_location, P.patterns, P.pattern_len) == (20, 10, 5, 40, 5)
    and P.beta >= 5
)
print(f"seeds {SEEDS[0]}..{SEEDS[-1]}, {P.steps} steps, paper-scale run: {PAPER_SCALE}")

# %% [markdown]
# ## 1. The closed form, checked exactly
#
# `nlcl_utils.global_modulation` computes, from the exact class-conditional moments of a
# discrete model (RF $k$ shows token $t$ with probability $q_k(t\mid z)$, RFs independent given
# $z$): $L_k$, $\Delta_k$, $d_k = w_k^\top L_k w_k$, $b_k = w_k^\top\Delta_k$, the top eigenpair
# $(\lambda, s)$ of $\mathbb V[f] = D + p_0p_1 bb^\top$ from the secular equation, $\delta_k$ and
# the velocity $\big(s_k^2\,\mathbb V[\tilde x_k] + \delta_k\Delta_k\Delta_k^\top\big)w_k$.
#
# **What "top layer aligned to s" means, and the normalization.** The top layer $V_{\rm top}$
# satisfies $V_{\rm top}^\top V_{\rm top} = s s^\top$ (e.g. the single row $s^\top$, where the
# top layer's own Oja flow goes) and is held fixed while differentiating with respect to the
# filters. Then, with homogeneity ($\partial f_k/\partial w_k = \tilde x_k$),
# $$\nabla_{w_k} \tfrac12\operatorname{tr}\mathbb V[f_2] = \sum_{k'} s_k s_{k'} C[\tilde x_k, \tilde x_{k'}]\,w_{k'}
#   = s_k^2\,\mathbb V[\tilde x_k]w_k + p_0p_1 s_k \Delta_k \sum_{k'\ne k} s_{k'} b_{k'}
#   = \big(s_k^2\,\mathbb V[\tilde x_k] + \delta_k\Delta_k\Delta_k^\top\big)w_k ,$$
# using $s_k \propto b_k/(d_k-\lambda)$. So PAPER.md's formula is the gradient of the
# *population covariance objective* $E_{\rm cov} = \tfrac12\operatorname{tr}\mathbb V[f_2]$, and it
# is exact (no correction of substance needed). In the α-CL normalization of
# `nlcl_utils.alpha_cl` — uniform α over ordered pairs of independent samples, augmentation term
# left out — $C_\alpha[a] = \mathbb E(a-a')(a-a')^\top = 2\,\mathbb V[a]$, so
# $\nabla\tfrac12\operatorname{tr}C_\alpha[f_2]$ is **twice** the closed form. Both are checked:
# autograd of $E_{\rm cov}$ built from per-token moments (nothing from the closed form), and
# autograd of $\tfrac12\operatorname{tr}C_\alpha[f_2]$ with `alpha_cl.contrastive_covariance` on
# the enumerated joint support ($\alpha_{uv} = \pi_u\pi_v$).

# %%
gen_theory = torch.Generator().manual_seed(P.seed)
identity_rows = []
for embedding in ("gaussian", "onehot"):
    d = max(P.cf_dim, P.cf_tokens) if embedding == "onehot" else P.cf_dim
    emb, probs, w = gm.random_model(P.cf_configs, P.cf_rfs, P.cf_tokens, d, embedding=embedding, generator=gen_theory)
    p1 = 0.1 + 0.8 * torch.rand(P.cf_configs, generator=gen_theory, dtype=DT)  # class balance per config
    for act in ("relu", "leaky_relu", "linear"):
        cf = gm.closed_form(emb, probs, p1, w, act)
        ref = gm.velocity_autograd(emb, probs, p1, w, cf.s, act)
        identity_rows.append(
            {
                "check": "E_cov (per-token moments)",
                "embedding": embedding,
                "activation": act,
                "max_rel_err": gm.relative_error(cf.velocity, ref).max().item(),
                "min_delta": cf.delta.min().item(),
            }
        )
emb_s, probs_s, w_s = gm.random_model(P.cf_configs, P.enum_rfs, P.enum_tokens, P.enum_tokens, generator=gen_theory)
p1_s = 0.1 + 0.8 * torch.rand(P.cf_configs, generator=gen_theory, dtype=DT)
cf_s = gm.closed_form(emb_s, probs_s, p1_s, w_s)
ref_s = gm.velocity_autograd_enumerated(emb_s, probs_s, p1_s, w_s, cf_s.s)
identity_rows.append(
    {
        "check": "1/2 tr C_alpha (enumerated) = 2x",
        "embedding": "gaussian",
        "activation": "relu",
        "max_rel_err": gm.relative_error(2 * cf_s.velocity, ref_s).max().item(),
        "min_delta": cf_s.delta.min().item(),
    }
)
ratio_s = ref_s.flatten(1).norm(dim=1) / cf_s.velocity.flatten(1).norm(dim=1)
identity = pd.DataFrame(identity_rows)
print(
    f"{P.cf_configs} random configurations per row (K={P.cf_rfs}, T={P.cf_tokens}; enumeration: K={P.enum_rfs}, T={P.enum_tokens})"
)
print(identity.to_string(index=False, formatters={"max_rel_err": "{:.1e}".format, "min_delta": "{:.2e}".format}))
print(
    f"|grad 1/2 tr C_alpha| / |closed form| over configurations: {ratio_s.min().item():.6f} .. {ratio_s.max().item():.6f}"
)

# %% [markdown]
# ### $\delta_k$ grows with the number of *other* informative RFs
#
# Nested sweep: for each random configuration (all RFs informative), RFs $1..m$ keep their
# class dependence and RFs $m+1..K-1$ get the class-averaged token distribution (same token
# frequencies, no information about $z$: `gm.remove_information`). We track $\delta_0$ of RF 0
# (always informative) as $m$ goes from 0 to $K-1$. For $K$ *identical* informative RFs the
# closed form gives $s_k = 1/\sqrt{K}$ and $\delta_k = p_0p_1 (K-1)/K$, drawn as the reference
# curve ($p_1 = 1/2$).

# %%
sweep_rows = []
min_delta_sweep = float("inf")
for embedding in ("gaussian", "onehot"):
    d = max(P.cf_dim, P.cf_tokens) if embedding == "onehot" else P.cf_dim
    emb, probs, w = gm.random_model(P.cf_configs, P.cf_rfs, P.cf_tokens, d, embedding=embedding, generator=gen_theory)
    for m in range(P.cf_rfs):
        keep = torch.arange(P.cf_rfs) <= m
        cf = gm.closed_form(emb, gm.remove_information(probs, 0.5, keep), 0.5, w)
        min_delta_sweep = min(min_delta_sweep, cf.delta.min().item())
        for i in range(P.cf_configs):
            sweep_rows.append(
                {
                    "embedding": embedding,
                    "m": m,
                    "config": i,
                    "delta0": cf.delta[i, 0].item(),
                    "s0sq": cf.s[i, 0].item() ** 2,
                }
            )
sweep = pd.DataFrame(sweep_rows)
delta_mean = sweep.groupby(["embedding", "m"]).delta0.mean().unstack("embedding")
per_config = sweep.pivot_table(index=["embedding", "config"], columns="m", values="delta0")
monotone = (per_config.diff(axis=1).iloc[:, 1:] >= -1e-15).all(axis=1).groupby("embedding").mean()
min_mean_increment = delta_mean.diff().iloc[1:].min().min()
print("mean delta_0 by number m of other informative RFs:")
print(delta_mean.T.map(lambda v: f"{v:.4f}").to_string())
print(
    "fraction of configurations where delta_0 never decreases as m grows:",
    ", ".join(f"{k}: {v:.3f}" for k, v in monotone.items()),
)

# %% [markdown]
# ### The closed-form flow on a frequency-matched toy model
#
# `gm.matched_pair_model`: at every RF, tokens 0 and 2 carry the class (token 0 only under
# $z=1$, token 2 only under $z=0$), tokens 1 and 3 are *exactly as frequent* ($c$ each) but
# class-independent, one-hot embeddings, $p_1 = 1/2$. Because the marginal covariance
# $\mathbb V[\tilde x_k]$ does not see $z$, it treats informative and matched tokens alike:
# only $\delta_k\Delta_k\Delta_k^\top$ can favour the informative ones. We run the unit-norm flow
# $\dot w_k = (I - w_kw_k^\top)(s_k^2\mathbb V[\tilde x_k] + \delta_k\Delta_k\Delta_k^\top)w_k$
# (top layer re-aligned to $s$ at every step) from `flow_inits` random inits, with RFs $1..m$
# informative, and record which token RF 0's filter ends up pointing to (largest weight).
# All values of $m$ run as one batch.

# %%
emb_toy, probs_toy = gm.matched_pair_model(P.flow_rfs, P.flow_tokens, P.flow_freq)
m_values = torch.arange(P.flow_rfs)
keep = torch.arange(P.flow_rfs).unsqueeze(0) <= m_values.unsqueeze(1)  # [n_m, K]
probs_m = gm.remove_information(probs_toy.expand(len(m_values), 2, P.flow_rfs, P.flow_tokens), 0.5, keep)
probs_b = probs_m.repeat_interleave(P.flow_inits, 0)  # [n_m * inits, 2, K, T]
emb_b = emb_toy.expand(probs_b.shape[0], *emb_toy.shape)
w0 = torch.randn(P.flow_inits, P.flow_rfs, P.flow_tokens, generator=gen_theory, dtype=DT).repeat(len(m_values), 1, 1)
w_end = gm.normalized_flow(emb_b, probs_b, 0.5, w0, P.flow_steps, P.flow_lr)
cf_end = gm.closed_form(emb_b, probs_b, 0.5, w_end)
winner = w_end[:, 0].argmax(-1).view(len(m_values), P.flow_inits)
flow = pd.DataFrame(
    {
        "m": m_values.tolist(),
        "informative": torch.isin(winner, torch.tensor(gm.INFORMATIVE_TOKENS)).double().mean(1).tolist(),
        "matched": torch.isin(winner, torch.tensor(gm.MATCHED_TOKENS)).double().mean(1).tolist(),
        "delta0": cf_end.delta[:, 0].view(len(m_values), P.flow_inits).mean(1).tolist(),
    }
)
flow["other"] = 1 - flow.informative - flow.matched
min_delta_flow = cf_end.delta.min().item()
print("RF 0's filter after the flow: fraction ending on each kind of token")
print(flow.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %%
fig, axes = plt.subplots(1, 2, figsize=plotting.FIGSIZE["wide"])
ax = axes[0]
for i, embedding in enumerate(("gaussian", "onehot")):
    part = sweep[sweep.embedding == embedding]
    q = part.groupby("m").delta0.quantile([0.1, 0.9]).unstack()
    ax.fill_between(q.index, q[0.1], q[0.9], color=plotting.PALETTE[i], alpha=0.2)
    ax.plot(
        delta_mean.index,
        delta_mean[embedding],
        "o-",
        color=plotting.PALETTE[i],
        ms=3,
        label=f"random models, {embedding} embeddings (mean, 10-90%)",
    )
mm = np.arange(P.cf_rfs)
ax.plot(mm, 0.25 * mm / (mm + 1), "--", color=plotting.COLORS["theory"], label="identical RFs: $p_0p_1\\,m/(m+1)$")
ax.set(xlabel="other informative RFs $m$", ylabel="$\\delta_0$", title="global boost of RF 0")
ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
ax = axes[1]
ax.plot(flow.m, flow.informative, "o-", color=plotting.COLORS["relu"], label="informative token (0 or 2)")
ax.plot(flow.m, flow.matched, "s-", color=plotting.COLORS["linear"], label="frequency-matched token (1 or 3)")
ax.plot(flow.m, flow.other, "^:", color=plotting.COLORS["other"], label="other / mixed")
ax.set(
    xlabel="other informative RFs $m$",
    ylabel="fraction of inits",
    ylim=(0, 1),
    title="closed-form flow: which token RF 0 learns",
)
ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
plotting.savefig(fig, FIG_DIR, "closed_form")

# %% [markdown]
# Left: $\delta_0 = 0$ exactly when no other RF carries global information, and its mean
# grows with every extra informative RF (for identical RFs as $p_0p_1\,m/(m+1)$). It is not
# monotone for *every* configuration (the printed fraction): adding an informative RF also
# moves $\lambda$ and the normalization $Z$. Right: with $m = 0$ the flow cannot tell an
# informative token from an equally frequent uninformative one (equal fractions up to
# sampling noise of the inits); as $m$ grows, RF 0 increasingly picks the informative token —
# the theory's prediction in its cleanest form.

# %% [markdown]
# ## 2. The token experiment: learned vs ignored tokens
#
# The paper's main setting (PAPER.md §5) on the engine: ReLU, BatchNorm (gradient through the
# mean, not the variance), β = 5, InfoNCE τ = 0.1, SGD lr 0.02, momentum 0.9, weight decay
# 5e-3, batch 128, all seeds batched. Every run keeps weight snapshots every
# `snapshot_every` steps; from them we get each token's score (best cosine over the RF's
# filters) over training, $\chi^\pm$ curves and lock-on steps.

# %%
BASE = train.TokenConfig(
    vocab=P.vocab,
    locations=P.locations,
    per_location=P.per_location,
    patterns=P.patterns,
    pattern_len=P.pattern_len,
    beta=P.beta,
    steps=P.steps,
)
SNAPS = sorted(set(range(0, P.steps + 1, P.snapshot_every)) | {P.steps})


def run_case(label, tables=None, **changes):
    """Train all seeds of one configuration (batched); return per-token trajectories and statistics."""
    cfg = dataclasses.replace(BASE, **changes)
    tasks, model, sampler = train.build_token_experiment(cfg, SEEDS)
    if tables is not None:
        sampler = TokenSampler(tasks, cfg.batch_size, wildcard_probs=tables)  # one filler table per seed
    res = train.train(
        model,
        sampler,
        cfg.steps,
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        snapshot_steps=SNAPS,
        desc=label,
    )
    snaps = res.snapshots["first"]  # [S, R, K, M, d]
    S, R = snaps.shape[:2]
    traj = metrics.token_scores(snaps.flatten(0, 1), tasks.embeddings.repeat(S, 1, 1)).unflatten(0, (S, R))
    plus = tasks.plus_mask()
    chi_p, chi_m = metrics.chi_scores(traj.flatten(0, 1), plus.repeat(S, 1, 1))
    stats = priority.token_statistics(tasks.pattern_tokens, cfg.vocab, tables)
    return {
        "label": label,
        "config": cfg,
        "redraw": cfg.task_spec().redraw_count,
        "tasks": tasks,
        "traj": traj,
        "plus": plus,
        "stats": stats,
        "chi_plus": chi_p.view(S, R),
        "chi_minus": chi_m.view(S, R),
        "nan": int(res.nan.sum()),
        "lock": priority.first_lock_on(traj, SNAPS, P.lock_threshold),
        "tables": tables,
    }


plan = [("main", None, {})]
plan += [(f"redraw {r}", None, {"redraw": r}) for r in P.redraw_counts if r != WILDCARDS]
task_probe = train.build_token_experiment(BASE, SEEDS)[0]
match_tables, match_pairs = priority.matched_filler_probs(task_probe.pattern_tokens, P.vocab, P.n_matched)
plan += [(f"matched, redraw {r}", match_tables, {"redraw": r}) for r in P.matched_redraws]
plan += [(name, None, {"bn": False} if name == "bn_off" else {"loss": "quadratic"}) for name in P.ablations]
plan += [(f"G={g}", None, {"patterns": g}) for g in P.pattern_counts if g != P.patterns]
RUNS = {}
for label, tables, changes in bar(plan, desc="configurations"):
    RUNS[label] = run_case(label, tables, **changes)
print(
    f"{len(RUNS)} configurations x {P.n_seeds} seeds; replicas stopped by the NaN guard:",
    sum(r["nan"] for r in RUNS.values()),
)

# %%
main = RUNS["main"]
st = main["stats"]
freq_pattern = st.frequency[st.is_pattern].mean().item()
freq_filler = st.frequency[~st.is_pattern].mean().item()
chi_plus_final, chi_minus_final = main["chi_plus"][-1], main["chi_minus"][-1]
print(
    f"main setting, final chi+ = {chi_plus_final.mean():.3f} (min over seeds {chi_plus_final.min():.3f}), "
    f"chi- = {chi_minus_final.mean():.3f} (max over seeds {chi_minus_final.max():.3f})"
)
print(
    f"token frequency at a location: pattern tokens {freq_pattern:.4f}, filler-only tokens {freq_filler:.4f} "
    f"(ratio {freq_pattern / freq_filler:.2f})"
)

# %% [markdown]
# In the paper's generator a token that some pattern puts at location $k$ appears there far
# more often than a filler-only token (the printed ratio, ≈ 5 with G = 40: patterns fill each
# location about half the time from 5 tokens, wildcards spread the other half over all 20).
# And a filler-only token is *never* shared by the two views when all wildcards are re-drawn.
# So "$\chi^- \to 0$" alone cannot be credited to global modulation.
#
# ## 3. Augmentation or global modulation?
#
# * **Re-draw sweep**: the second view re-draws only `redraw` of the 5 wildcards; with 0 the
#   two views are identical (filler tokens are as invariant as pattern tokens).
# * **Frequency-matched control** (`priority.matched_filler_probs`): at each location, the
#   filler distribution is skewed so that `n_matched` filler-only tokens are *exactly* as
#   frequent there as the least-used pattern tokens (each paired with one). Each seed has its
#   own task, hence its own table: the engine's sampler takes them as `wildcard_probs [R, K, V]`.
#
# With redraw 0 *and* matched frequency, a matched filler-only token and its pattern partner
# differ only in what they say about the global pattern: that pair isolates global modulation.


# %%
def pair_summary(run):
    """Final score and lock-on order of (pattern token a_j, matched filler b_j) pairs."""
    used = match_pairs[..., 0] >= 0
    r, k, _ = torch.nonzero(used, as_tuple=True)
    a, b = match_pairs[used][:, 0], match_pairs[used][:, 1]
    final = run["traj"][-1]
    la, lb = run["lock"][r, k, a], run["lock"][r, k, b]
    return {
        "pairs": int(used.sum()),
        "score_pattern": final[r, k, a].mean().item(),
        "score_matched_filler": final[r, k, b].mean().item(),
        "pattern_first": (la < lb).double().mean().item(),
        "filler_first": (lb < la).double().mean().item(),
        "neither_locks": (torch.isinf(la) & torch.isinf(lb)).double().mean().item(),
        "freq_gap": (run["stats"].frequency[r, k, a] - run["stats"].frequency[r, k, b]).abs().max().item(),
    }


case_rows = []
for label, run in RUNS.items():
    if not (label == "main" or label.startswith("redraw") or label.startswith("matched")):
        continue
    row = {
        "case": label,
        "redraw": run["redraw"],
        "matched": run["tables"] is not None,
        "chi+": run["chi_plus"][-1].mean().item(),
        "chi-": run["chi_minus"][-1].mean().item(),
        "chi- std": run["chi_minus"][-1].std().item() if P.n_seeds > 1 else 0.0,
    }
    if run["tables"] is not None:
        row.update(pair_summary(run))
    case_rows.append(row)
cases = pd.DataFrame(case_rows)
print(cases.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %%
fig, axes = plt.subplots(1, 2, figsize=plotting.FIGSIZE["wide"])
ax = axes[0]
steps_axis = np.array(SNAPS)
for name, color in (("chi_plus", plotting.PALETTE[0]), ("chi_minus", plotting.PALETTE[3])):
    vals = main[name].numpy()
    ax.fill_between(steps_axis, vals.min(1), vals.max(1), color=color, alpha=0.25)
    ax.plot(
        steps_axis,
        vals.mean(1),
        color=color,
        label=("$\\chi^+$" if name == "chi_plus" else "$\\chi^-$") + " (mean, min-max)",
    )
ax.set(xlabel="step", ylabel="score", ylim=(-0.05, 1.05), title=f"main setting, ReLU + BN, {P.n_seeds} seeds")
ax.legend(fontsize=8)
ax = axes[1]
for i, run in enumerate(r for l, r in RUNS.items() if l == "main" or l.startswith(("redraw", "matched"))):
    style = "--" if run["tables"] is not None else "-"
    name = f"redraw {run['redraw']}" + (", matched" if run["tables"] is not None else "")
    ax.plot(steps_axis, run["chi_minus"].mean(1).numpy(), style, color=plotting.PALETTE[i], label=f"$\\chi^-$, {name}")
ax.set(
    xlabel="step", ylabel="$\\chi^-$ (mean over seeds)", ylim=(-0.05, 1.05), title="filler-only tokens vs augmentation"
)
ax.legend(fontsize=7)
plotting.savefig(fig, FIG_DIR, "chi_over_training")

# %%
score_cases = [l for l in RUNS if l == "main" or l.startswith(("redraw", "matched"))]
fig, axes = plt.subplots(1, len(score_cases), figsize=(2.4 * len(score_cases), 3.0), sharey=True, squeeze=False)
for ax, label in zip(axes[0], score_cases):
    run = RUNS[label]
    kind = np.where(run["stats"].is_pattern.numpy(), "pattern token", "filler-only")
    if run["tables"] is not None:
        boosted = (~run["stats"].is_pattern) & (run["tables"] > run["tables"].amin(-1, keepdim=True) + 1e-12)
        kind = np.where(boosted.numpy(), "matched filler-only", kind)
    frame = pd.DataFrame(
        {
            "frequency": run["stats"].frequency.flatten().numpy(),
            "score": run["traj"][-1].flatten().numpy(),
            "kind": kind.flatten(),
        }
    )
    sns.scatterplot(
        data=frame,
        x="frequency",
        y="score",
        hue="kind",
        s=7,
        alpha=0.5,
        ax=ax,
        linewidth=0,
        hue_order=["pattern token", "filler-only", "matched filler-only"],
        palette=[plotting.PALETTE[0], plotting.PALETTE[3], plotting.PALETTE[2]],
        legend=ax is axes[0][-1],
    )
    ax.set(title=label, xlabel="frequency at location", ylabel="final score")
if axes[0][-1].get_legend() is not None:
    sns.move_legend(axes[0][-1], "center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, title=None)
plotting.savefig(fig, FIG_DIR, "score_vs_frequency")

# %% [markdown]
# **Reading.** The table and the two figures above separate the two explanations:
#
# * With every wildcard re-drawn (the paper), filler-only tokens are never learned — including
#   the frequency-matched ones, which are as frequent as pattern tokens. So frequency is *not*
#   why they are ignored.
# * Re-draw fewer wildcards and filler-only tokens are learned: with redraw 0 $\chi^-$ is about
#   as high as $\chi^+$ (the network has β = 5 times more filters than needed, enough to cover
#   every token). The $\chi^- \to 0$ of the main setting is therefore explained by the
#   **augmentation** (filler tokens are not shared by the two views), not by global modulation.
# * The clean test of global modulation is the matched pairs at redraw 0 (same frequency, same
#   invariance, only the global information differs). There the pattern token is **not**
#   favoured in this setting: see `pattern_first` vs `filler_first` and the final scores in the
#   table. The theory's boost is real in the closed form (§1) but, with InfoNCE, BatchNorm and a
#   50-dimensional top layer, it does not decide which of two equally frequent, equally invariant
#   tokens is learned. We record this as a finding rather than a pass.

# %% [markdown]
# ## 4. Priority: globally informative tokens lock on earlier
#
# For every (seed, location, token) of the main run: the first snapshot step at which some
# filter's cosine with the token's embedding reaches `lock_threshold` (never = ∞, ranked last)
# against the mutual information between "the token is at this location" and the pattern id
# (`priority.token_statistics`, exact). Spearman correlations (`priority.spearman`, average ranks
# for ties) pooled over seeds: over all tokens, and over pattern tokens only (stricter: among
# pattern tokens MI, the number of patterns using the token and its frequency move together, so
# this part cannot separate information from frequency — §3 does that).


# %%
def priority_summary(run):
    stats, lock = run["stats"], run["lock"]
    pat = stats.is_pattern
    rho_all = priority.spearman(stats.mutual_info.flatten(), lock.flatten()).item()
    rho_pat = priority.spearman(stats.mutual_info[pat], lock[pat]).item() if pat.sum() > 1 else float("nan")
    rho_mi_freq = (
        priority.spearman(stats.mutual_info[pat], stats.frequency[pat]).item() if pat.sum() > 1 else float("nan")
    )
    locked = torch.isfinite(lock)
    return {
        "rho_all": rho_all,
        "rho_pattern": rho_pat,
        "rho_MI_freq_pattern": rho_mi_freq,
        "locked_pattern": locked[pat].double().mean().item(),
        "locked_filler": locked[~pat].double().mean().item(),
        "median_lock_pattern": lock[pat].median().item(),
    }


prio_main = priority_summary(main)
print("main setting:", ", ".join(f"{k} = {v:.3f}" for k, v in prio_main.items()))

# %%
fig, axes = plt.subplots(1, 2, figsize=plotting.FIGSIZE["wide"])
stats, lock = main["stats"], main["lock"]
never = P.steps * 1.08
frame = pd.DataFrame(
    {
        "MI": stats.mutual_info.flatten().numpy(),
        "n_patterns": stats.n_patterns.flatten().numpy(),
        "lock": lock.clamp(max=never).flatten().numpy(),
        "kind": np.where(stats.is_pattern.flatten().numpy(), "pattern token", "filler-only"),
    }
)
for ax, x, xlabel in (
    (axes[0], "MI", "MI(token at k; pattern id) [bits]"),
    (axes[1], "n_patterns", "patterns using the token at k"),
):
    jitter = np.random.default_rng(P.seed).uniform(-0.3, 0.3, len(frame)) * (1.0 if x == "n_patterns" else 0.0)
    sns.scatterplot(
        x=frame[x] + jitter,
        y=frame["lock"],
        hue=frame["kind"],
        s=8,
        alpha=0.5,
        linewidth=0,
        ax=ax,
        palette=[plotting.PALETTE[0], plotting.PALETTE[3]],
        hue_order=["pattern token", "filler-only"],
        legend=ax is axes[0],
    )
    ax.axhline(P.steps, color="0.5", lw=0.8, ls=":")
    ax.set(xlabel=xlabel, ylabel="first lock-on step (top: never)")
axes[0].set_title(f"Spearman: all {prio_main['rho_all']:.2f}, pattern tokens {prio_main['rho_pattern']:.2f}")
med = frame[frame.kind == "pattern token"].groupby("n_patterns")["lock"].median()
axes[1].plot(med.index, med.values, "k-", lw=1.2, label="median (pattern tokens)")
axes[1].legend(fontsize=7)
axes[1].set_title("lock-on step vs pattern count")
plotting.savefig(fig, FIG_DIR, "priority")

# %% [markdown]
# Pattern tokens all lock on during training, filler-only tokens (low MI) essentially never do,
# which gives the strong negative correlation over all tokens — but §3 showed that this split
# is the augmentation's doing. Among pattern tokens the correlation is negative but weaker:
# tokens used by more patterns (more informative *and* more frequent) tend to lock on earlier.
#
# ## 5. What strengthens or weakens modulation
#
# Same seeds and setting, one change at a time: BatchNorm off, the quadratic (uniform-α) loss
# instead of InfoNCE, and the number of patterns G.

# %%
abl_rows = []
for label, run in RUNS.items():
    if label.startswith(("redraw", "matched")):
        continue
    cfg = run["config"]
    row = {
        "case": label,
        "bn": cfg.bn,
        "loss": cfg.loss,
        "G": cfg.patterns,
        "chi+": run["chi_plus"][-1].mean().item(),
        "chi-": run["chi_minus"][-1].mean().item(),
    }
    row.update(priority_summary(run))
    abl_rows.append(row)
abl = pd.DataFrame(abl_rows)
print(abl.drop(columns=["rho_MI_freq_pattern"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %%
fig, axes = plt.subplots(1, 3, figsize=plotting.FIGSIZE["wide"], layout="constrained")
loss_bn = abl[abl.G == P.patterns]
x = np.arange(len(loss_bn))
axes[0].bar(x - 0.2, loss_bn["chi+"], 0.4, color=plotting.PALETTE[0], label="$\\chi^+$")
axes[0].bar(x + 0.2, loss_bn["chi-"], 0.4, color=plotting.PALETTE[3], label="$\\chi^-$")
axes[0].set_xticks(x, loss_bn["case"], rotation=20)
axes[0].set(ylim=(0, 1.05), title="final $\\chi^\\pm$ (mean over seeds)")
axes[0].legend(fontsize=7)
axes[1].bar(x, loss_bn["rho_pattern"], 0.5, color=plotting.PALETTE[2])
axes[1].axhline(0, color="0.3", lw=0.8)
axes[1].set_xticks(x, loss_bn["case"], rotation=20)
axes[1].set(title="priority: Spearman(MI, lock-on)\npattern tokens", ylim=(-1, 1))
g_sweep = abl[abl.case.isin(["main"] + [f"G={g}" for g in P.pattern_counts])].sort_values("G")
axes[2].plot(g_sweep.G, g_sweep["chi+"], "o-", color=plotting.PALETTE[0], label="$\\chi^+$")
axes[2].plot(g_sweep.G, g_sweep["chi-"], "o-", color=plotting.PALETTE[3], label="$\\chi^-$")
axes[2].plot(g_sweep.G, g_sweep["rho_pattern"], "s--", color=plotting.PALETTE[2], label="Spearman (pattern)")
axes[2].axhline(0, color="0.3", lw=0.8)
axes[2].set(xlabel="patterns G", ylim=(-1, 1.05), title="number of patterns")
axes[2].set_xticks(g_sweep.G.tolist())
axes[2].legend(fontsize=7)
plotting.savefig(fig, FIG_DIR, "ablations")

# %% [markdown]
# **Reading** (default run; numbers in the table above).
#
# * **BatchNorm off**: $\chi^+$ still reaches 1 but $\chi^-$ stays clearly above the main run
#   (≈ 0.09 vs ≈ 0.003: fewer filler tokens fully suppressed), while the priority among pattern
#   tokens is *stronger* (Spearman ≈ −0.36 vs ≈ −0.18). A plausible reading: BN rescales every
#   hidden unit to unit variance, which removes much of the head start that frequent /
#   informative tokens get from their larger variance, so they lock on in a less ordered way.
# * **Quadratic loss** (uniform α — the setting of the closed form): the strongest priority
#   (≈ −0.45) but incomplete coverage ($\chi^+ \approx 0.74$ after 5000 steps, about a quarter
#   of the pattern tokens never lock on): without InfoNCE's emphasis on hard negatives, the
#   rarely used pattern tokens are learned late or not at all. So the ordering effect the
#   theory describes is most visible exactly where the theory's assumption (uniform α) holds.
# * **Number of patterns G** (10, 40, 80): $\chi^\pm$ barely change; the within-pattern priority
#   weakens as G grows (≈ −0.30, −0.18, −0.12). We did not test why; note that with more
#   patterns the lock-on steps of pattern tokens bunch up (median ≈ 1850–2000 in all three).

# %% [markdown]
# ## Claims
#
# Thresholds: the closed form is an identity, so only float64 round-off is allowed (the issue's
# 1e-6); $\delta_k \ge 0$ and "grows with $m$" are sign statements from the theory (threshold 0);
# the flow claim is the theory's prediction that, when other RFs are informative, the
# informative token wins more often than the equally frequent matched one (difference > 0);
# $\chi^+ \ge 0.97$ and $\chi^- \le 0.05$ are the issue's bounds for the paper's setting; the
# priority claims are the sign the paper predicts (negative Spearman correlation between
# information and lock-on step). The training claims are asserted only at paper scale (a reduced
# smoke run records them as notes). The global-modulation-vs-augmentation results of §3 are
# findings: they are not what the paper's account of $\chi^- \to 0$ suggests.

# %%
checks = claims.Claims("03_global_modulation")
checks.check(
    "closed form vs autograd of 1/2 tr V[f_2] (max rel. error)",
    identity[identity.check.str.startswith("E_cov")].max_rel_err.max(),
    1e-6,
    "<=",
)
checks.check(
    "2 x closed form vs autograd of 1/2 tr C_alpha[f_2] (max rel. error)",
    identity[identity.check.str.startswith("1/2 tr")].max_rel_err.max(),
    1e-6,
    "<=",
)
checks.check(
    "delta_k >= 0 (min over all configurations)",
    min(identity.min_delta.min(), min_delta_sweep, min_delta_flow),
    0.0,
    ">=",
)
checks.check("mean delta_0 grows with each extra informative RF (min increment)", min_mean_increment, 0.0, ">")
last = flow.iloc[-1]
checks.check(
    f"flow, m={int(last.m)}: informative minus matched winner fraction", last.informative - last.matched, 0.0, ">"
)
training = [
    ("ReLU+BN final mean chi+", chi_plus_final.mean().item(), 0.97, ">="),
    ("ReLU+BN final mean chi-", chi_minus_final.mean().item(), 0.05, "<="),
    ("priority: Spearman(MI, lock-on step), all tokens", prio_main["rho_all"], 0.0, "<"),
    ("priority: Spearman(MI, lock-on step), pattern tokens", prio_main["rho_pattern"], 0.0, "<"),
]
for name, value, threshold, op in training:
    if PAPER_SCALE:
        checks.check(name, value, threshold, op)
    else:
        checks.finding(name, value, expected=f"{op} {threshold} (paper scale)", note="reduced run: not asserted")
redraw0 = cases[(cases.redraw == 0) & ~cases.matched]
if len(redraw0):
    checks.finding(
        "chi- with no wildcard re-drawn (redraw 0)",
        redraw0["chi-"].iloc[0],
        expected="chi- -> 0 credited to global modulation",
        note="filler-only tokens are learned once they are view-invariant: chi- -> 0 is the augmentation's doing",
    )
matched0 = cases[(cases.redraw == 0) & cases.matched]
if len(matched0):
    row = matched0.iloc[0]
    checks.finding(
        "matched pairs, redraw 0: score(pattern) - score(matched filler)",
        row.score_pattern - row.score_matched_filler,
        expected="> 0 (informative learned first/more)",
        note=f"pattern token locks first in {row.pattern_first:.2f} of pairs, filler first in {row.filler_first:.2f}",
    )
checks.report()
checks.save(FIG_DIR)
checks.assert_all()

# %% [markdown]
# ## Summary
#
# * **Theory, exactly.** The closed form of PAPER.md §4 is the gradient of the population
#   covariance objective $\tfrac12\operatorname{tr}\mathbb V[f_2]$ with the top layer aligned to
#   the top eigenvector $s$ (held fixed); in α-CL's normalization (uniform α over ordered pairs,
#   no augmentation term) $\tfrac12\operatorname{tr}C_\alpha[f_2] = \operatorname{tr}\mathbb V[f_2]$,
#   a factor 2 and nothing else. The match is at round-off level (≈ 1e-15); $\delta_k \ge 0$
#   everywhere; $\delta_k = 0$ without other informative RFs and its mean grows with their
#   number; in a frequency-matched toy model the closed-form flow prefers the informative token
#   only when other RFs are informative (0.35 vs 0.33 with none, 0.57 vs 0.22 with five).
# * **Experiment.** The paper's setting reproduces ($\chi^+ = 1.000$, $\chi^- = 0.003$ over 8
#   seeds). But the suppression of filler-only tokens is the augmentation's doing (re-drawn
#   wildcards): with identical views $\chi^- \approx 0.90$, and frequency-matched uninformative
#   tokens are learned as well as (here slightly better than) their pattern partners. Global
#   modulation shows up as a *priority* among pattern tokens (Spearman between information and
#   lock-on step ≈ −0.18 with InfoNCE + BN, −0.36 without BN, −0.45 with the quadratic loss),
#   which in this generator cannot be told apart from frequency (their rank correlation among
#   pattern tokens is ≈ 0.95).
