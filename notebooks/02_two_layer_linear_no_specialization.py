# %% [markdown]
# # 02 · Two layers: ReLU filters specialize, linear filters cannot
#
# **Claim.** In the two-layer receptive-field network of the paper's token experiment, ReLU
# filters specialize: each locks onto one pattern token, and with more filters per receptive
# field (RF, larger β) they cover every pattern token ($\chi^+ \to 1$). Linear filters do not,
# whatever β (statements T2.1 and T2.2 of `docs/theory.md`).
#
# **Why — two arguments, with different reach.**
#
# * **Driving matrices (T2.3; covers the paper's setting, full BatchNorm).** For a homogeneous
#   activation the gradient of filter $m$ of RF $k$ is exactly
#   $\nabla_{w_{km}}L = \sum_{v=1,2} s^v_{km}\,D^v_{km}\,v_{km}$, where $v_{km}$ is the unit's
#   top-layer column, $s^v_{km}$ BatchNorm's per-unit factor $1/\sqrt{\mathrm{var}+\epsilon}$ in
#   view $v$, and $D^v_{km} = \sum_i h'(w_{km}^\top x^v_{ki})\,x^v_{ki}\,\psi^{v\top}_i$ the filter's
#   **driving matrix** ($\psi_i$: the centred output gradient $\partial L/\partial f_i$). With a
#   linear $h$, $h' = 1$: every filter of an RF is driven by the *same* two matrices, and they
#   differ only through their own top-layer column and a per-unit scale — no gate tells them
#   apart. With ReLU, $h'$ is the gate $\mathbb 1[w_{km}^\top x > 0]$ and each filter is driven
#   by the rows of the tokens its own gate lets through. We measure this in the trained
#   networks of the paper's setting (full BN, β = 5, 5000 steps, 8 seeds).
# * **Rotation symmetry (T2.4; scoped: no BN or mean-only BN).** Replacing RF $k$'s filters
#   $W_k$ by $QW_k$ ($Q$ orthogonal) and its top-layer columns $V_k$ by $V_kQ^\top$ leaves a
#   linear network's function, loss and whole SGD trajectory unchanged — exact without BN or
#   with mean-only BN, so nothing in that objective prefers token-aligned filters. Full BN
#   divides each unit by its own standard deviation, which does not commute with mixing units:
#   the symmetry breaks, and we measure by how much.
#
# A third view, the **population model** (T2.5; uniform α, exact expectations over an
# enumerated small task), shows ReLU filters capturing different pattern tokens; its linear
# collapse to one direction is forced by its rank-one top layer (section 4).
#
# Seeds are `range(n_seeds)`; a seed fixes the task, the init and the data stream, so ReLU and
# linear, with and without BN, see the same tasks.

# %% tags=["parameters", "hide-input"]
# 1. the paper's token experiment (docs/theory.md section 6)
n_seeds = 8  # seeds 0 .. n_seeds - 1, one replica each (task, init and data), batched
betas = [1, 2, 5]  # over-parameterization: beta * per_location filters per RF; must include 1
steps = 5000  # SGD steps (minibatches)
batch_size = 128  # minibatch size (also the batch the driving matrices are measured on)
lr = 0.02  # SGD learning rate (momentum 0.9, weight decay 5e-3: the engine's defaults)
vocab = 20  # V tokens, one-hot embeddings
locations = 10  # K receptive fields
per_location = 5  # P tokens per location that patterns may use
patterns = 40  # G global patterns
pattern_len = 5  # L non-wildcard locations per pattern
out_dim = 50  # top-layer outputs
tau = 0.1  # InfoNCE temperature
workers = 0  # processes training the configurations side by side (0: one per core)
baseline_draws = 100  # random in-span filter banks per seed and beta (the chi+ baseline)
heatmap_location = 0  # the RF whose filters and driving matrices are drawn
draw_seed = 0  # generator of every draw that is not training (baselines, rotations)
# 3. the rotation symmetry
rotation_batch = 128  # batch on which losses are compared
rotation_null_draws = 16  # random rotations per trained network for the rotation null
equivariance_beta = 2.0  # network size of the rotated-training check
equivariance_steps = 300  # SGD steps (float64) from W and from Q W
# 4. population model (small task, enumerated exactly)
pop_vocab = 10  # tokens
pop_locations = 3  # RFs
pop_per_location = 4  # tokens per location that patterns may use
pop_patterns = 8  # global patterns
pop_pattern_len = 2  # non-wildcard locations per pattern
pop_beta = 2.0  # pop_beta * pop_per_location filters per RF
pop_out_dim = 8  # top-layer outputs
pop_task_seed = 0  # seed of the task
pop_n_inits = 8  # inits 0 .. pop_n_inits - 1, each run with linear and with ReLU
pop_steps = 4000  # linear flow: steps of the Riemannian gradient ascent
pop_dt = 0.2  # linear flow: step size (its stability limit is about 0.3 here)
pop_relu_steps = 8000  # ReLU flow: steps (its gradient norm decays slowly)
pop_relu_dt = 0.5  # ReLU flow: step size (stable for ReLU here; check the recorded gradient norm)
pop_polish_iters = 30  # ReLU: at most this many Newton steps inside the flow's gate pattern, from its endpoint
pop_record_every = 40  # recording interval (steps)
pop_example_init = 0  # the init drawn in detail

# %% tags=["hide-input"]
import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from nlcl_utils.data.tokens import TokenSampler, TokenTaskSpec
from nlcl_utils.engine import metrics, train
from nlcl_utils.notebook import claims, params, plotting, session
from nlcl_utils.theory import driving
from nlcl_utils.theory import two_layer_dynamics as tld


def paper_scale(p) -> bool:
    """Whether this run tests the statements: the paper's token experiment (its task, training settings and
    beta = 5) at least as long and with at least as many seeds as the defaults, and the population model's
    task with at least the default inits and ReLU steps. Smaller runs report their verdicts only."""
    return (
        p.steps >= 5000
        and p.n_seeds >= 8
        and max(p.betas) >= 5
        and (p.vocab, p.locations, p.per_location, p.patterns, p.pattern_len) == (20, 10, 5, 40, 5)
        and (p.batch_size, p.lr, p.out_dim, p.tau) == (128, 0.02, 50, 0.1)
        and (p.pop_vocab, p.pop_locations, p.pop_per_location, p.pop_patterns, p.pop_pattern_len) == (10, 3, 4, 8, 2)
        and p.pop_n_inits >= 8
        and p.pop_relu_steps >= 8000
    )


nb = session.setup(
    "02_two_layer_linear_no_specialization",
    globals(),
    full_scale=paper_scale,
    ranges={
        # the token task's and the training's ranges, as the settings declare them
        **params.ranges_from(train.TokenConfig, ("steps", "batch_size", "lr", "out_dim", "tau")),
        **params.ranges_from(train.TokenConfig, ("vocab", "locations", "per_location", "patterns", "pattern_len")),
        **params.ranges_from(
            train.TokenConfig,
            ("vocab", "locations", "per_location", "patterns", "pattern_len", "beta", "out_dim"),
            prefix="pop_",
        ),
        "n_seeds": params.Int(min=2),
        "betas": params.List(params.Float(min=1.0), min_len=2),
        "workers": params.Int(min=0),
        "baseline_draws": params.Int(min=1),
        "heatmap_location": params.Int(min=0),
        "draw_seed": params.Int(min=0),
        "rotation_batch": params.Int(min=2),
        "rotation_null_draws": params.Int(min=1),
        "equivariance_beta": params.Float(min=1.0),
        "equivariance_steps": params.Int(min=1),
        "pop_task_seed": params.Int(min=0),
        "pop_n_inits": params.Int(min=1),
        "pop_steps": params.Int(min=1),
        "pop_dt": params.Float(min=0.0, min_exclusive=True),
        "pop_relu_steps": params.Int(min=2),
        "pop_relu_dt": params.Float(min=0.0, min_exclusive=True),
        "pop_polish_iters": params.Int(min=0),
        "pop_record_every": params.Int(min=1),
        "pop_example_init": params.Int(min=0),
    },
)
P, FIG_DIR, checks = nb.params, nb.fig_dir, nb.claims
if P.heatmap_location >= P.locations:
    raise params.ParameterError(
        f"parameter 'heatmap_location': expected an integer < locations={P.locations}, got {P.heatmap_location}"
    )
if P.pop_example_init >= P.pop_n_inits:
    raise params.ParameterError(
        f"parameter 'pop_example_init': expected an integer < pop_n_inits={P.pop_n_inits}, got {P.pop_example_init}"
    )
if 1 not in P.betas:
    raise params.ParameterError(f"parameter 'betas': must contain 1 (the baseline of the beta gain), got {P.betas}")
BASE = train.TokenConfig(
    vocab=P.vocab,
    locations=P.locations,
    per_location=P.per_location,
    patterns=P.patterns,
    pattern_len=P.pattern_len,
    out_dim=P.out_dim,
    tau=P.tau,
    lr=P.lr,
    batch_size=P.batch_size,
    steps=P.steps,
)
BASE.validate()  # the task sizes fail here, before any compute
POP_SPEC = TokenTaskSpec(
    vocab=P.pop_vocab,
    locations=P.pop_locations,
    per_location=P.pop_per_location,
    patterns=P.pop_patterns,
    pattern_len=P.pop_pattern_len,
)
if tld.support_size(POP_SPEC) > tld.MAX_SUPPORT:
    raise params.ParameterError(
        f"parameters 'pop_*': the enumerated support G*V^(2(K-L)) = {tld.support_size(POP_SPEC)} "
        f"exceeds {tld.MAX_SUPPORT}; use fewer tokens, patterns or wildcards"
    )
SEEDS = list(range(P.n_seeds))
R = len(SEEDS)
F64 = torch.float64
ACTS = ["relu", "linear"]
CONFIGS = [("relu", True), ("relu", False), ("linear", True), ("linear", False)]  # (activation, BN)
BETA_MAX = max(P.betas)
gen = torch.Generator().manual_seed(P.draw_seed)
ROUNDOFF = 1e-10  # float64 round-off bound for printed residuals that have no claim of their own


def label(act: str, bn: bool) -> str:
    return ("ReLU" if act == "relu" else "linear") + (" + BN" if bn else ", no BN")


print(
    f"seeds {SEEDS[0]}..{SEEDS[-1]}, betas {P.betas}, {P.steps} steps; "
    f"full-scale run (predictions are tests): {nb.full_scale}"
)

# %% [markdown]
# ## 1. The paper's experiment: ReLU and linear, with and without BN, β = 1 … 5
#
# The engine (`train.run_tokens`): one-hot tokens, InfoNCE τ = 0.1, SGD with momentum 0.9 and
# weight decay 5e-3, BatchNorm on the hidden units (gradient through the batch mean, not the
# variance) or none. Linear *without* BN is the setting where the rotation symmetry of
# section 3 is exact. Metrics (`nlcl_utils.engine.metrics`), as the reference metric defines them:
# **$\chi^+$ uses the absolute cosine for the linear activation** (a linear filter's sign is
# arbitrary) **and the signed cosine for ReLU**;
#
# * $\chi^+$: per RF, the mean over its pattern tokens of the best filter cosine, averaged over RFs;
# * **selective**: fraction of filters whose best token cosine is ≥ 0.9;
# * **coverage**: fraction of (RF, pattern token) pairs some filter covers with cosine ≥ 0.9;
# * **effective rank** of each RF's unit-norm filters (1: all parallel).
#
# Two baselines, computed for every seed and β with the same metric (|cos| or signed):
# the **untrained** network (the init), and **random in-span filters**: $M$ independent unit
# vectors uniform in the span of each RF's pattern-token embeddings
# (`metrics.random_filter_baseline`) — filters that know where the patterns live but prefer
# no token. The **chance level** of "selective" is that baseline's selective fraction in closed
# form: a uniform unit vector in the span of $n$ orthonormal tokens has $|\cos| \ge 0.9$ with one
# of them with probability $n\,P(|u_1| \ge 0.9)$ (disjoint events since $0.9 > 1/\sqrt2$), 0.0725
# for $n = 5$ (`two_layer_dynamics.chance_selective_fraction`, per RF).
#
# **Predictions** (thresholds derived before the runs):
#
# * T2.2, ReLU + BN at β = 5: $\chi^+ \ge 0.9$ — every pattern token has, on average, a filter at
#   the selectivity cosine; and above the random in-span baseline (per-seed difference > 0).
#   The same comparison with the baseline for ReLU without BN.
# * T2.1, linear (with and without BN): at every β the selective fraction is at most the
#   chance level (per seed, the largest over β of selective − chance ≤ 0): with no token
#   preference, a linear filter is token-selective only as often as a direction of the span
#   with no preference.
# * T2.2, ReLU (with and without BN) at β = 5: selective fraction above the chance level.
# * T2.1, with BN at β = 5: linear filters collapse onto fewer directions than ReLU filters —
#   per seed, the effective rank of an RF's filters, linear minus ReLU, is below 0 (the
#   collapse that shared driving matrices produce in the population model, section 4, carried
#   over to the trained networks).
#
# Every prediction compares per-seed values with its threshold through a 95% Student t
# interval of the mean over seeds: it *holds* when the interval lies on the predicted side,
# is *refuted* when it lies on the other side and *undecided* when it straddles the threshold.

# %%
# Every (beta, activation, BN) configuration, trained side by side (one process per core);
# identical to training them one after the other.
run_keys = [(beta, act, bn) for beta in P.betas for act, bn in CONFIGS]
trained_runs = train.run_tokens_many(
    [dataclasses.replace(BASE, beta=beta, activation=act, bn=bn) for beta, act, bn in run_keys],
    SEEDS,
    workers=P.workers or None,
)
trained_runs = dict(zip(run_keys, trained_runs))
n_plus = None
rows, base_rows, trained = [], [], {}
for beta in P.betas:
    cfg = dataclasses.replace(BASE, beta=beta)
    tasks, init_net, _ = train.build_token_experiment(cfg, SEEDS)
    if n_plus is None:
        n_plus = tasks.plus_mask().sum(-1)  # [R, K]: pattern tokens per RF (tasks depend on the seed only)
        chance = torch.tensor([[tld.chance_selective_fraction(int(n)) for n in rf] for rf in n_plus.tolist()])
        chance = chance.double().mean(-1)  # [R]: chance level of "selective", mean over RFs
    for absolute in (True, False):
        untrained = metrics.token_metrics(init_net.first, tasks, absolute=absolute)
        in_span = metrics.random_filter_baseline(
            tasks.embeddings, tasks.plus_mask(), cfg.filters, absolute=absolute, draws=P.baseline_draws, generator=gen
        )
        for r, seed in enumerate(SEEDS):
            base_rows.append(
                {
                    "beta": beta,
                    "cosine": "|cos|" if absolute else "signed",
                    "seed": seed,
                    "untrained chi+": untrained["chi_plus"][r].item(),
                    "in-span chi+": in_span.chi_plus[r].item(),
                    "in-span selective": in_span.selective_fraction[r].item(),
                }
            )
    for act, bn in CONFIGS:
        run = trained_runs[beta, act, bn]
        for rec in run.runs():
            rows.append(
                {
                    "config": label(act, bn),
                    "activation": act,
                    "bn": bn,
                    "beta": beta,
                    "seed": rec["seed"],
                    "chi+": rec["chi_plus"],
                    "chi-": rec["chi_minus"],
                    "selective": rec["selective_fraction"],
                    "coverage": rec["coverage"],
                    "eff. rank": rec["effective_rank"],
                    "nan": rec["nan"],
                }
            )
        if beta == BETA_MAX:
            trained[act, bn] = run
results = pd.DataFrame(rows)
baselines = pd.DataFrame(base_rows).set_index(["beta", "cosine", "seed"])
COSINE = {"relu": "signed", "linear": "|cos|"}
results["in-span chi+"] = [
    baselines.loc[(b, COSINE[a], s), "in-span chi+"] for a, b, s in zip(results.activation, results.beta, results.seed)
]
results["chance"] = [chance[SEEDS.index(s)].item() for s in results.seed]


def ci_text(values) -> str:
    """Mean [95% Student t interval over seeds], with the digits the interval supports."""
    return claims.estimate(*claims.interval(list(values)))


table = results.groupby(["config", "beta"])[["chi+", "in-span chi+", "selective", "coverage", "eff. rank"]].agg(ci_text)
print(
    f"{len(P.betas)} betas x {len(CONFIGS)} configurations x {R} seeds, {P.steps} steps; "
    f"replicas stopped by the NaN guard: {int(results.nan.sum())}"
)
print("mean [95% Student t interval over seeds]; 'in-span chi+': random in-span filters, same cosine as the row")
print(table.to_string())
print(
    f"pattern tokens per RF: mean {n_plus.double().mean():.2f}; chance level of 'selective': {ci_text(chance.tolist())}"
)
print(baselines.groupby(["cosine", "beta"]).mean().map(lambda v: f"{v:.3f}").to_string())
for bn in (True, False):
    run = trained["relu", bn]
    cos_max = metrics.filter_token_cosines(run.model.first, run.tasks.embeddings).amax(-1)  # [R, K, M]
    dead = (cos_max <= 0).double().mean((1, 2))
    selective_live = (
        (cos_max >= metrics.SELECTIVE_THRESHOLD).double().sum((1, 2)) / (cos_max > 0).sum((1, 2))
    ).tolist()
    print(
        f"{label('relu', bn)}, beta={BETA_MAX:g}: dead filters (no positive cosine) {ci_text(dead.tolist())}; "
        f"selective among the others {ci_text(selective_live)}"
    )

# %%
fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.6), layout="constrained")
STYLE = {True: "-", False: "--"}
OFFSET = {("relu", True): -0.09, ("relu", False): -0.03, ("linear", True): 0.03, ("linear", False): 0.09}
for ax, metric_name in zip(axes, ["chi+", "selective"]):
    for act, bn in CONFIGS:
        sub = results[(results.activation == act) & (results.bn == bn)]
        # per beta: mean, low, high
        stats = np.array([claims.interval(sub[sub.beta == b][metric_name].tolist()) for b in P.betas])
        xs = np.array(P.betas) + OFFSET[act, bn]
        plotting.dodged_errorbar(ax, P.betas, xs, stats[:, 0], [stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
                                 color=plotting.COLORS[act], ls=STYLE[bn], marker="o", ms=4, capsize=3,
                                 label=label(act, bn))  # fmt: skip
base_mean = baselines.groupby(["cosine", "beta"]).mean()
for cosine, act in (("signed", "relu"), ("|cos|", "linear")):
    sub = base_mean.loc[cosine]
    axes[0].plot(sub.index, sub["in-span chi+"], color=plotting.COLORS[act], ls=":", lw=1.5,
                 label=f"random in-span filters ({cosine})")  # fmt: skip
    axes[0].plot(sub.index, sub["untrained chi+"], color=plotting.COLORS[act], ls="-.", lw=1, alpha=0.7,
                 label=f"untrained network ({cosine})")  # fmt: skip
axes[1].axhline(
    chance.mean().item(), color=plotting.COLORS["theory"], ls=":", lw=1.2, label="chance (no token preference)"
)
axes[0].set(xlabel="β (filters per RF = β·P)", ylabel="$\\chi^+$", xticks=P.betas,
            title="$\\chi^+$: |cos| for linear, signed cos for ReLU")  # fmt: skip
axes[1].set(xlabel="β (filters per RF = β·P)", ylabel="selective fraction (cos ≥ 0.9)",
            xticks=P.betas, title="Token-selective filters")  # fmt: skip
axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
axes[1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
fig.suptitle(f"Token experiment: ReLU specializes as β grows, linear does not ({R} seeds, mean and 95% interval)")
plotting.savefig(fig, FIG_DIR, "chi_plus_vs_beta")

# %% [markdown]
# **What it shows.** Left: ReLU's $\chi^+$ climbs with β to 1, far above random filters
# placed in the right subspace (dotted) and the untrained network (dash-dotted); linear's
# rises only a little with β and, for β > 1, stays *below* the random in-span filters: its
# filters are not only token-blind but also spread outside the span of the pattern tokens
# (onto filler tokens). The baselines are computed with the cosine of the curve they go with
# (|cos| for linear, signed for ReLU), so a ReLU curve is compared with the signed baseline.
# Right: linear networks have almost no token-selective filters, below the chance level of
# token-blind directions; ReLU's fraction is high but not 1. With BN the rest are mostly dead
# filters (closed on every token: printed above, and the all-blue rows of the heatmap below);
# without BN almost no filter dies and the rest are live filters that select no single token.
#
# **Predictions of this section** (stated above; verdicts recorded here, printed at the end):
#
# * ReLU + BN at β = 5: $\chi^+ \ge 0.9$, the selectivity cosine (T2.2, "χ+ → 1");
# * ReLU (with and without BN) at β = 5: $\chi^+$ minus the random in-span baseline > 0, and the
#   selective fraction minus its chance level > 0 — specialization beats token-blind filters (T2.2);
# * linear (with and without BN): the largest over β of selective fraction minus chance ≤ 0 — no
#   token preference means no more selective filters than a direction of the span (T2.1);
# * with BN at β = 5: effective rank, linear minus ReLU, < 0 — linear filters collapse onto
#   fewer directions (T2.1, 0 = no difference; the section 1 table shows both ranks).
#
# Reported without a threshold: linear $\chi^+$ minus its random in-span baseline (|cos|), which
# mixes token preference with how much of a filter lies outside the pattern-token span.


# %%
def column(act: str, bn: bool, beta: float, name: str) -> np.ndarray:
    """Per-seed values (seed order) of one results column."""
    sub = results[(results.activation == act) & (results.bn == bn) & (results.beta == beta)].sort_values("seed")
    return sub[name].to_numpy()


B = BETA_MAX
checks.prediction(
    f"ReLU + BN, beta={B:g}: chi+",
    "T2.2",
    per_seed=column("relu", True, B, "chi+"),
    op=">=",
    threshold=0.9,
    threshold_source="T2.2: chi+ -> 1; 0.9 is the selectivity cosine, i.e. every pattern token has a filter at it "
    "on average",
)
for bn in (True, False):
    checks.prediction(
        f"{label('relu', bn)}, beta={B:g}: chi+ minus random in-span filters (signed)",
        "T2.2",
        per_seed=column("relu", bn, B, "chi+") - column("relu", bn, B, "in-span chi+"),
        op=">",
        threshold=0.0,
        threshold_source="T2.2: specialized filters beat token-blind filters of the pattern span (baseline computed "
        "per seed)",
    )
    checks.prediction(
        f"{label('linear', bn)}: largest over beta of selective fraction minus chance",
        "T2.1",
        per_seed=np.max([column("linear", bn, b, "selective") - column("linear", bn, b, "chance") for b in P.betas], 0),
        op="<=",
        threshold=0.0,
        threshold_source="T2.1: no token preference -> selective no more often than a uniform direction of the "
        "pattern span (chance level in closed form, per seed)",
    )
    checks.prediction(
        f"{label('relu', bn)}, beta={B:g}: selective fraction minus chance",
        "T2.2",
        per_seed=column("relu", bn, B, "selective") - column("relu", bn, B, "chance"),
        op=">",
        threshold=0.0,
        threshold_source="T2.2: specialized filters are token-selective above the chance level of token-blind "
        "directions",
    )
checks.prediction(
    f"beta={B:g}: effective rank, linear + BN minus ReLU + BN",
    "T2.1",
    per_seed=column("linear", True, B, "eff. rank") - column("relu", True, B, "eff. rank"),
    op="<",
    threshold=0.0,
    threshold_source="T2.1 as a collapse: linear filters, driven by matrices shared across an RF, end in fewer "
    "directions than ReLU filters (as in the population model, section 4); 0 = no difference",
)
for bn in (True, False):
    checks.finding(
        f"{label('linear', bn)}, beta={B:g}: chi+ minus random in-span filters (|cos|)",
        "T2.1",
        per_seed=column("linear", bn, B, "chi+") - column("linear", bn, B, "in-span chi+"),
        expected="<= 0: no token preference",
        note="linear filters also spread onto filler tokens, outside the pattern span",
    )
checks.show_new()

# %%
loc = P.heatmap_location
fig, axes = plt.subplots(1, 2, figsize=plotting.FIGSIZE["wide"], layout="constrained")
plus0 = trained["relu", True].tasks.plus_mask()[0, loc].numpy()
tick_labels = [f"{t}*" if plus0[t] else f"{t}" for t in range(P.vocab)]
filter_order = {}  # activation -> filters sorted by the token they match best (then by how well)
for ax, act in zip(axes, ACTS):
    run = trained[act, True]
    cos = metrics.filter_token_cosines(run.model.first, run.tasks.embeddings)[0, loc].numpy()  # [M, V], signed
    filter_order[act] = order = np.lexsort((-np.abs(cos).max(1), np.abs(cos).argmax(1)))
    sns.heatmap(cos[order], ax=ax, cmap=plotting.CMAPS["diverging"], vmin=-1, vmax=1, cbar=False,
                xticklabels=tick_labels, yticklabels=False)  # fmt: skip
    ax.set(title=f"{label(act, True)}: RF {loc}, seed {SEEDS[0]}, β = {BETA_MAX:g}",
           xlabel="token (* = appears here in a pattern)", ylabel=f"{cos.shape[0]} filters (sorted by best token)")  # fmt: skip
    ax.tick_params(axis="x", rotation=90)  # upright labels of V tokens would collide
fig.colorbar(axes[0].collections[0], ax=axes, label="cosine(filter, token)")
plotting.savefig(fig, FIG_DIR, "learned_filters")

# %% [markdown]
# **What it shows.** Each row is one filter of the same RF, each column a token. ReLU filters
# are one-hot on the pattern tokens (*) — several filters per token, every pattern token
# covered — or dead (all non-positive). Linear filters are dense mixtures of many tokens,
# pattern tokens and fillers alike, with both signs.
#
# ## 2. The driving matrices in the paper's setting (full BN, β = 5)
#
# For each trained network (ReLU + BN and linear + BN, β = max, every seed) and for the
# untrained ReLU network, on one batch of `batch_size` samples (float64,
# `nlcl_utils.theory.driving`): the driving matrices $D^v_{km}$ of every filter, BN's per-unit scales
# $s^v_{km}$, and the engine's own autograd gradient (`ReceptiveFieldNet.reference_loss`).
#
# * **Identity** (any homogeneous h, any weights): $\sum_v s^v_{km} D^v_{km} v_{km}$ equals
#   autograd's gradient of every filter (relative error at float64 round-off); with linear
#   h the matrices are identical across an RF's filters ($h' \equiv 1$).
# * **Prediction** (T2.3, ReLU + BN, trained): the **spread** of an RF's driving matrices,
#   $S_k = \sum_{v,m}\|D^v_{km} - \bar D^v_k\|_F^2 / \sum_{v,m}\|D^v_{km}\|_F^2$ ($\bar D^v_k$: mean
#   over the RF's filters; 0 when all filters share their matrices, at most $1 - 1/M$), averaged
#   over RFs, is **at least ½** (per seed, interval lower bound). Derivation: for one-hot tokens
#   row $t$ of $D^v_{km}$ is the shared row times the filter's gate on $t$, so $S_k$ is an
#   average over tokens of $1 - g_t$, $g_t$ being the fraction of the RF's filters whose gate is
#   open on $t$ (weighted by $\|\text{row } t\|^2 g_t$). Specialized filters — each open on its
#   own token, no token claimed by more than half of them — give $S_k \ge ½$; independent
#   random gates (the untrained network) give about $½(1 - 1/M)$, printed as the baseline.

# %%
drive = {}
for act in ACTS:
    run = trained[act, True]
    drive[label(act, True)] = driving.driving_matrices(run.model, TokenSampler(run.tasks, P.batch_size)())
init_tasks, init_relu, init_sampler = train.build_token_experiment(
    dataclasses.replace(BASE, beta=BETA_MAX, activation="relu", bn=True), SEEDS
)
drive["ReLU + BN, untrained"] = driving.driving_matrices(init_relu, init_sampler())
spread = {name: dm.spread().mean(-1) for name, dm in drive.items()}  # [R], mean over RFs
grad_error = np.max([dm.gradient_error().max().item() for dm in drive.values()])  # NaN propagates
scale_spread = {
    name: (dm.scales.std(2) / dm.scales.mean(2)).mean().item() for name, dm in drive.items()
}  # per-unit BN scales, relative spread over an RF's filters
GRAD_TOL, LINEAR_SPREAD_TOL = 1e-10, 1e-20  # float64 round-off; squared round-off (a ratio of squared norms)
print(f"sum_v s D v = autograd gradient: max relative error {claims.bound(grad_error, GRAD_TOL)}")
for name, values in spread.items():
    shown = claims.bound(values.max(), LINEAR_SPREAD_TOL) if name.startswith("linear") else ci_text(values.tolist())
    print(f"{name:>22}: spread of an RF's driving matrices {shown}; "
          f"relative spread of the BN scales s over an RF's filters {scale_spread[name]:.2f}")  # fmt: skip

# %%
fig, axes = plt.subplot_mosaic(
    [ACTS, ["spread", "spread"]],
    figsize=(plotting.FIGSIZE["grid"][0], 6.4),
    layout="constrained",
    height_ratios=[1.3, 1],
)
for act in ACTS:
    name = label(act, True)
    dm = drive[name]
    rows_norm = dm.matrices[0, :, loc].square().sum((0, -1)).sqrt()  # [M, V]: |row t| over both views
    rows_norm = rows_norm / rows_norm.amax(-1, keepdim=True).clamp(min=1e-300)
    sns.heatmap(rows_norm.numpy()[filter_order[act]], ax=axes[act], cmap=plotting.CMAPS["sequential"], vmin=0,
                vmax=1, cbar=False, xticklabels=tick_labels, yticklabels=False)  # fmt: skip
    axes[act].set(title=f"{name}: RF {loc}, seed {SEEDS[0]}", xlabel="token t (* = pattern token)",
                  ylabel=f"{rows_norm.shape[0]} filters (sorted by best token)")  # fmt: skip
    axes[act].tick_params(axis="x", rotation=90)  # upright labels of V tokens would collide
fig.colorbar(axes["relu"].collections[0], ax=[axes[act] for act in ACTS], label="|row t of $D_{km}$| / max over t")
spread_df = pd.DataFrame([{"network": name, "spread": v} for name, values in spread.items() for v in values.tolist()])
sns.swarmplot(data=spread_df, x="network", y="spread", hue="network", ax=axes["spread"], size=5, legend=False,
              palette=[plotting.COLORS["relu"], plotting.COLORS["linear"], plotting.COLORS["other"]])  # fmt: skip
axes["spread"].axhline(0.5, color=plotting.COLORS["theory"], ls="--", lw=1, label="prediction for ReLU: ≥ ½")
axes["spread"].set(xlabel="", ylabel="spread $S$ (mean over RFs)", ylim=(-0.05, 1.0),
                   title=f"Spread of the driving matrices per seed (β = {BETA_MAX:g}, full BN)")  # fmt: skip
axes["spread"].legend(loc="center left")
fig.suptitle(f"Driving matrices $D_{{km}}$ of the filters of RF {loc} (norm of each token's row), and their spread")
plotting.savefig(fig, FIG_DIR, "driving_matrices")

# %% [markdown]
# **What it shows.** Top: each row is one filter's driving matrix, drawn as the norm
# of its row for each token. In the linear network every filter of the RF has the same matrix
# (identical rows): whatever the gradient does to one filter, it does through the same
# matrices to all, weighted only by the filter's own top-layer column and BN scale. In the ReLU
# network each live filter is driven by the row of its own token (and dead filters by nothing),
# so the gradient itself tells the filters apart. Bottom: the spread per seed — exactly 0 for
# linear, about ½ for the untrained ReLU network (random gates), and higher in the trained ReLU
# network, whose gates have specialized.
#
# **Checks of this section.** Identities: the driving matrices rebuild autograd's gradient to
# float64 round-off (relative error ≤ 1e-10), and linear + BN's spread is 0 to squared round-off
# (≤ 1e-20). Prediction (T2.3): the trained ReLU + BN spread is at least ½, the value derived
# above for filters open on their own tokens. Reported: the untrained network's spread, the
# baseline of about ½(1 − 1/M).

# %%
checks.identity(
    "driving matrices rebuild the engine's gradient (max relative error)",
    "T2.3",
    measured=grad_error,
    op="<=",
    threshold=GRAD_TOL,
    threshold_source="float64 round-off for an exact chain-rule identity",
)
checks.identity(
    "linear + BN: spread of an RF's driving matrices (max)",
    "T2.3",
    measured=spread["linear + BN"].max(),
    op="<=",
    threshold=LINEAR_SPREAD_TOL,
    threshold_source="h' = 1: identical matrices; squared float64 round-off (ratio of squared norms)",
)
checks.prediction(
    f"ReLU + BN, beta={B:g}: spread of an RF's driving matrices",
    "T2.3",
    per_seed=spread["ReLU + BN"],
    op=">=",
    threshold=0.5,
    threshold_source="T2.3: S = gate-weighted mean of 1 - (fraction of filters open on a token); >= 1/2 when "
    "filters open on their own tokens (derivation in docs/theory.md); random gates give 1/2 (1 - 1/M)",
)
checks.finding(
    "ReLU + BN, untrained: spread of an RF's driving matrices",
    "T2.3",
    per_seed=spread["ReLU + BN, untrained"],
    expected="about 1/2 (1 - 1/M): random gates",
    note="the baseline of the T2.3 prediction",
)
checks.show_new()

# %% [markdown]
# ## 3. The rotation symmetry, where it is exact and where BN breaks it
#
# **(a) The loss at the trained weights.** For every RF an independent Haar-random
# $Q_k \in O(M)$; the loss (InfoNCE τ = 0.1, float64, one batch; the engine's
# `ReceptiveFieldNet.reference_loss`, mean-only BN is its `bn_scale=False`) of $(W, V)$ is
# compared with that of $(Q_kW_k,\ V_kQ_k^\top)_k$. No BN and mean-only BN are evaluated at the
# networks trained without BN (the identity holds at any weights), full BN at the networks
# trained with it (the paper's setting). Identity: linear, no BN / mean-only BN, relative
# change at float64 round-off. Measured, not predicted: how much full BN and ReLU break it.

# %%
M_MAX = trained["relu", True].model.first.shape[2]
q_rand = tld.random_orthogonal((R, P.locations), M_MAX, gen)
cases = [(("linear", False), "none"), (("linear", False), "mean"), (("linear", True), "full"),
         (("relu", False), "none"), (("relu", False), "mean"), (("relu", True), "full")]  # fmt: skip
rot_rows = []
for (act, bn), mode in cases:
    run = trained[act, bn]
    emb64 = run.tasks.embeddings.to(F64)
    batch = TokenSampler(run.tasks, P.rotation_batch)()
    first, top = run.model.first.to(F64), run.model.top.to(F64)
    change = tld.rotation_loss_change(batch, first, top, emb64, act, mode, q_rand)
    out_change = tld.rotation_output_change(batch[0], first, top, emb64, act, mode, q_rand)
    rot_rows += [{"activation": act, "BN": mode, "seed": s, "loss change": c, "output change": o}
                 for s, c, o in zip(SEEDS, change.tolist(), out_change.tolist())]  # fmt: skip
rotation = pd.DataFrame(rot_rows)
ROTATION_TOL = 1e-12  # float64 round-off of a loss summed over a batch, where the rotation is an exact symmetry
print("relative loss change |L(QW, VQ^T) - L(W, V)| / |L(W, V)| and relative output change, per seed: min .. max "
      "(where the symmetry is exact: the round-off bound they meet)")  # fmt: skip
for (act, mode), sub in rotation.groupby(["activation", "BN"]):
    exact = act == "linear" and mode != "full"
    shown = [claims.bound(sub[col].to_numpy().max(), ROTATION_TOL) if exact
             else f"{sub[col].min():.1e} .. {sub[col].max():.1e}" for col in ("loss change", "output change")]  # fmt: skip
    print(f"{act:>6}, BN {mode:<4}: loss change {shown[0]}; output change {shown[1]}")

# %% [markdown]
# **(b) The whole training run commutes with the rotation** (no BN). The loss and the weight
# decay are invariant, so gradients transform covariantly and SGD with momentum started at
# $(QW, VQ^\top)$ follows the rotated trajectory of the run started at $(W, V)$ on the same data.
# We train both (engine, no BN, float64, β = `equivariance_beta`) and measure
# $\|Q\,W(T) - W_{\rm rot}(T)\|_F / \|W(T)\|_F$ — an identity for linear (round-off, grown over
# the run), not for ReLU.

# %%
eq_cfg = dataclasses.replace(BASE, beta=P.equivariance_beta, bn=False, dtype="float64")
q_eq = tld.random_orthogonal((R, P.locations), eq_cfg.filters, gen)
eq_gap = {
    act: tld.equivariance_gap(dataclasses.replace(eq_cfg, activation=act), SEEDS, q_eq, P.equivariance_steps)[0]
    for act in ACTS
}
EQUIVARIANCE_TOL = 1e-10  # float64 round-off grown over the SGD steps, where the equivariance is exact
print(f"linear: |Q W(T) - W_rot(T)| / |W(T)| after {P.equivariance_steps} steps: "
      f"{claims.bound(eq_gap['linear'].max(), EQUIVARIANCE_TOL)}")  # fmt: skip
print(f"  relu: |Q W(T) - W_rot(T)| / |W(T)| after {P.equivariance_steps} steps: "
      f"min {eq_gap['relu'].min():.1e}, max {eq_gap['relu'].max():.1e}")  # fmt: skip

# %%
fig, axes = plt.subplots(1, 2, figsize=plotting.FIGSIZE["wide"], layout="constrained")
floor = torch.finfo(F64).eps / 20  # exact zeros are drawn at this floor
rotation["case"] = rotation.activation + "\nBN " + rotation.BN  # two short lines: upright, no collisions
rotation["shown"] = rotation["loss change"].clip(lower=floor)
sns.swarmplot(data=rotation, x="case", y="shown", hue="activation", palette=plotting.COLORS, ax=axes[0], size=4,
              legend=False, log_scale=True)  # fmt: skip
axes[0].set(xlabel="", ylabel="|L(QW, VQᵀ) − L(W, V)| / |L(W, V)|",
            title="Loss change under a random rotation (trained networks)")  # fmt: skip
gaps = pd.DataFrame([{"activation": act, "gap": g} for act in ACTS for g in eq_gap[act].clamp(min=floor).tolist()])
sns.swarmplot(data=gaps, x="activation", y="gap", hue="activation", palette=plotting.COLORS, ax=axes[1], size=5,
              legend=False, log_scale=True)  # fmt: skip
axes[1].set(xlabel="", ylabel="|Q W(T) − W_rot(T)| / |W(T)|",
            title=f"Training from W and from QW ({P.equivariance_steps} steps, no BN, float64)")  # fmt: skip
plotting.savefig(fig, FIG_DIR, "rotation_test")

# %% [markdown]
# **What it shows.** Left: rotating every RF's filters (with the compensating top layer) leaves
# the linear loss unchanged at float64 round-off without BN and with mean-only BN; with full
# BN — the paper's setting — the linear loss changes by a clearly non-round-off amount, so the
# symmetry argument does not cover that setting (the driving-matrix argument of section 2
# does). ReLU's loss changes in every BN mode. Right: the rotated linear training run ends
# exactly at the rotated weights; ReLU's does not.
#
# **Checks of (a) and (b).** Identities (T2.4): without BN and with mean-only BN the linear
# loss changes under the rotation by at most float64 round-off (relative change ≤ 1e-12), and
# the rotated linear training run ends at the rotated weights up to round-off grown over the
# run (≤ 1e-10). Reported without a threshold: how much full BN breaks the linear symmetry, and
# how far ReLU is from it (loss change and training gap).

# %%
for mode in ("none", "mean"):
    sub = rotation[(rotation.activation == "linear") & (rotation.BN == mode)]
    checks.identity(
        f"rotation, BN {mode}: linear max relative loss change",
        "T2.4",
        measured=sub["loss change"].to_numpy().max(),
        op="<=",
        threshold=ROTATION_TOL,
        threshold_source="float64 round-off of a loss summed over a batch (exact invariance)",
    )
checks.identity(
    "rotated training, no BN: linear max gap",
    "T2.4",
    measured=eq_gap["linear"].max(),
    op="<=",
    threshold=EQUIVARIANCE_TOL,
    threshold_source="float64 round-off grown over the SGD steps (exact equivariance)",
)
full = rotation[(rotation.activation == "linear") & (rotation.BN == "full")].sort_values("seed")
checks.finding(
    "rotation, full BN: linear relative loss change",
    "T2.4",
    per_seed=full["loss change"],
    expected="0 if the symmetry held; it is derived only without BN or with mean-only BN",
    note="per-unit variance normalization does not commute with mixing units: full BN breaks the symmetry",
)
relu_none = rotation[(rotation.activation == "relu") & (rotation.BN == "none")].sort_values("seed")
checks.finding(
    "rotation, no BN: ReLU relative loss change",
    "T2.4",
    per_seed=relu_none["loss change"],
    expected="> 0: relu(Qz) != Q relu(z)",
    note="the symmetry is specific to linear h",
)
checks.finding(
    "rotated training, no BN: ReLU gap",
    "T2.4",
    per_seed=eq_gap["relu"],
    expected="> 0",
    note="ReLU's SGD trajectory does not commute with the rotation",
)
checks.show_new()

# %% [markdown]
# **(c) The rotation null.** A randomly rotated copy of a trained linear network without BN is
# an exactly equally good solution; so, if nothing prefers token-aligned filters, the trained
# network should be no more token-selective, and have no higher $\chi^+$, than its rotated
# copies. With full BN the rotated copy is only an approximately equal solution (a). For ReLU,
# rotating destroys what training built. Per seed: trained value minus the mean over
# `rotation_null_draws` rotations; mean and 95% interval over seeds.
#
# **Predictions.** T2.2: for ReLU + BN at β = 5 the selective fraction of the trained network
# exceeds that of its rotated copies (per-seed difference, interval above 0). T2.1: for linear,
# with and without BN, the trained network is no more token-selective and has no higher
# $\chi^+$ than its rotated copies (per-seed difference ≤ 0, the statement above; a difference
# that is 0 in distribution leaves the interval straddling 0, which is recorded as undecided).

# %%
null_rows = []
for act, bn in [("linear", False), ("linear", True), ("relu", True)]:
    run = trained[act, bn]
    absolute = act == "linear"
    draws = [metrics.token_metrics(tld.random_orthogonal((R, P.locations), M_MAX, gen).to(run.model.first.dtype)
                                   @ run.model.first, run.tasks, absolute=absolute)
             for _ in range(P.rotation_null_draws)]  # fmt: skip
    for metric, key in (("selective", "selective_fraction"), ("chi+", "chi_plus")):
        rotated = torch.stack([d[key] for d in draws]).mean(0)
        for r, seed in enumerate(SEEDS):
            null_rows.append({"config": label(act, bn), "metric": metric, "seed": seed,
                              "trained": run.metrics[key][r].item(), "rotated": rotated[r].item()})  # fmt: skip
rotation_null = pd.DataFrame(null_rows)
rotation_null["difference"] = rotation_null.trained - rotation_null.rotated
print(f"trained vs randomly rotated (mean of {P.rotation_null_draws} rotations), beta = {BETA_MAX:g}: "
      "mean [95% Student t interval] over seeds")  # fmt: skip
print(rotation_null.groupby(["config", "metric"])[["trained", "rotated", "difference"]].agg(ci_text).to_string())


# %%
def null_difference(config: str, metric: str) -> np.ndarray:
    """Per-seed trained minus rotated (seed order) of one configuration and metric."""
    sub = rotation_null[(rotation_null.config == config) & (rotation_null.metric == metric)].sort_values("seed")
    return sub.difference.to_numpy()


checks.prediction(
    f"ReLU + BN, beta={B:g}: selective fraction, trained minus rotated copies",
    "T2.2",
    per_seed=null_difference("ReLU + BN", "selective"),
    op=">",
    threshold=0.0,
    threshold_source="T2.2: selectivity is built by training, and a rotation of the filters destroys it "
    "(0 = no difference)",
)
for bn in (True, False):
    for metric in ("selective", "chi+"):
        checks.prediction(
            f"{label('linear', bn)}, beta={B:g}: {metric}, trained minus rotated copies",
            "T2.1",
            per_seed=null_difference(label("linear", bn), metric),
            op="<=",
            threshold=0.0,
            threshold_source="T2.1: nothing prefers token-aligned filters, so training makes a linear network no "
            "more token-aligned than its rotated copies (exact symmetry without BN, approximate with full BN); "
            "0 = no difference",
        )
checks.show_new()

# %% [markdown]
# ## 4. The population model: what it shows, and what its constraint forces
#
# A small token task (`pop_*` parameters) whose two-view distribution is **enumerated**
# exactly (every pattern, every filler of every wildcard in both views). Uniform α gives the
# energy $E = \operatorname{tr}\operatorname{Cov}(f(x), f(x'))$ (minus the population quadratic
# loss of unnormalized outputs; mean-only BN does not change it). Filters are kept on their unit
# spheres (standing in for BN's scale normalization) and the top layer on the unit Frobenius
# sphere; Riemannian gradient ascent in float64 (Euler steps, then back onto the spheres),
# every init run once with linear and once with ReLU.
#
# **The top-layer constraint forces the linear collapse.** On the unit Frobenius sphere,
# $\max_V \operatorname{tr}(VGV^\top)$ is the top eigenvalue of the hidden cross-covariance $G$,
# reached by a rank-one $V = ab^\top$. The network then has one output direction,
# $b^\top h = \sum_k \big(\sum_m b_{km} w_{km}\big)^\top x_k$ for linear h, and the gradient of
# filter $(k, m)$ is $b_{km}$ times a vector shared by the RF's filters: they all move along one
# direction and end parallel. So the parallel linear filters here are a consequence of this
# constraint, not evidence about the trained networks (where linear filters keep an effective
# rank well above 1, section 1). What the model shows *despite* the rank-one top layer is the
# ReLU side: gates let the filters of one RF settle on different pattern tokens.
#
# **Prediction** (T2.5): where the ReLU flow converges, the filters of an RF select more than
# one distinct pattern token on average (per init, interval above 1 — a parallel filter bank
# selects at most one); reported against how many pattern tokens each RF has.
#
# **Reaching convergence.** The linear flow reaches round-off in a few thousand steps; the ReLU
# flow does not: its gradient norm decays like a power law (fitted below over the second half
# of the run, with the number of steps it would need at that rate). Where the slowness comes
# from (our analysis, not the paper's): a weight with no gradient of its own — a closed gate
# (a negative weight), or a token with no covariance — moves only through its filter's
# normalization; the flow shrinks it by a factor $1 - \mathrm{dt}\,(g\cdot w)$ per step
# ($g\cdot w$: the filter's gradient along itself) and never past 0. On a filter whose
# top-layer weight is small, $g\cdot w$ is tiny, and so is the motion of its open weights. So
# after `pop_relu_steps` steps we finish the job with `two_layer_dynamics.polish_within_gates`:
# set those weights to 0 (where the flow takes them, on filters with $g\cdot w > 0$), then
# Newton steps on the Riemannian Hessian restricted to the open weights and the top layer,
# where the energy is smooth; zero weights stay exactly 0, since any positive step would open a
# gate. What this step must do, recorded below as implementation checks: the gradient norm
# drops to the linear run's level or lower, no gate opens or closes, the energy does not drop,
# what the flow computes (each RF's map from tokens to outputs,
# $\sum_m V_{:,km}\,h(w_{km}^\top e_t)$) gets closer to the polished point's as the flow runs
# (a unit test shows, on a smaller task where the flow converges in affordable time, that the
# flow ends on the polished point to 1e-6), and the captured-token counts are those of the
# flow's endpoint.
#
# Then two tests of what kind of point it is. Upward directions of the Riemannian Hessian
# (autograd, float64, projected on the constraints' tangent space): a local maximum within the
# gates has none, a saddle at least one; the linear endpoints are the positive control and must
# show none. And where the gradient is blind: with one-hot tokens switching a dead gate on can
# raise the energy at first order while ReLU's gradient there is exactly 0
# (`two_layer_dynamics.dead_token_gain`).


# %%
@dataclasses.dataclass
class PopulationRun:
    """One activation's flow and what it learned. Shapes: T records, I inits, K RFs, M filters, V tokens."""

    flow: tld.FlowTrajectory
    slope: torch.Tensor  # [I]
    cosines: torch.Tensor  # [T, I, K, M, V] (|cos| for linear, signed for ReLU, as the reference metric)
    effective_rank: torch.Tensor  # [T, I, K]
    captured: torch.Tensor  # [T, I, K]: distinct pattern tokens some filter selects (cos >= 0.9)


pop_filters = int(round(P.pop_beta * P.pop_per_location))
pop_inits = list(range(P.pop_n_inits))
pop_runs = {}
for act, n_steps, dt in (("linear", P.pop_steps, P.pop_dt), ("relu", P.pop_relu_steps, P.pop_relu_dt)):
    pop, first0, top0, slope = tld.population_instance(POP_SPEC, P.pop_task_seed, pop_inits, [act], pop_filters,
                                                       P.pop_out_dim)  # fmt: skip
    flow = tld.integrate_flow(pop, first0, top0, slope, n_steps, dt=dt, record_every=P.pop_record_every)
    T = flow.first.shape[0]
    cos = metrics.filter_token_cosines(flow.first.flatten(0, 1), pop.embeddings.repeat(T, 1, 1))
    cos = cos.unflatten(0, (T, P.pop_n_inits))
    cos = cos.abs() if act == "linear" else cos
    plus_only = cos.masked_fill(~pop.plus.view(1, *pop.plus.shape[:2], 1, pop.plus.shape[2]), -1.0)
    pop_runs[act] = PopulationRun(flow, slope, cos, metrics.effective_rank(flow.first),
                                  tld.distinct_selected_tokens(plus_only))  # fmt: skip
KP, MP, DP = pop_runs["relu"].flow.first.shape[2:]
pop_n_plus = pop.plus[0].sum(-1)  # [K] pattern tokens per RF (one task, every init)
relu_run = pop_runs["relu"]
# The ReLU flow's last stretch, by Newton steps inside its gate pattern from its endpoint
POLISH_TOL = 1e-13  # stop when every init's gradient norm is below this (float64 round-off of the energy's sums)
polished = tld.polish_within_gates(relu_run.flow.first[-1], relu_run.flow.top[-1], pop, relu_run.slope,
                                   max_iter=P.pop_polish_iters, tol=POLISH_TOL)  # fmt: skip
polished_cos = metrics.filter_token_cosines(polished.first, pop.embeddings)  # [I, K, M, V], signed (ReLU)
polished_captured = tld.distinct_selected_tokens(polished_cos.masked_fill(~pop.plus.unsqueeze(2), -1.0))  # [I, K]


def rf_maps(first: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """What a ReLU network computes, RF by RF: ``sum_m V[:, km] relu(w_km . e_t)`` for every token t.

    first [..., I, K, M, d], top [..., I, out, K*M] -> [..., I, out, K, V] (any leading dims, e.g. records).
    """
    table = torch.relu(torch.einsum("...ikmd,ivd->...ikmv", first, pop.embeddings))
    return torch.einsum("...iokm,...ikmv->...iokv", top.unflatten(-1, (KP, MP)), table)


# [T, I]: how far what the flow computes is from what the polished point computes, and its energy gap
approach = (
    (rf_maps(relu_run.flow.first, relu_run.flow.top) - rf_maps(polished.first, polished.top)).flatten(2).norm(dim=-1)
)
energy_gap = polished.energy - relu_run.flow.energy  # [T, I]
weight_distance = (relu_run.flow.first[-1] - polished.first).flatten(1).norm(dim=1)  # [I]


@dataclasses.dataclass
class EndPoint:
    """Where a population run ends. Shapes: I inits, K RFs, M filters, d dims, out outputs."""

    first: torch.Tensor  # [I, K, M, d]
    top: torch.Tensor  # [I, out, K*M]
    slope: torch.Tensor  # [I]
    energy: torch.Tensor  # [I]
    grad_norm: torch.Tensor  # [I]
    captured: torch.Tensor  # [I, K]
    effective_rank: torch.Tensor  # [I, K]


def flow_end(run: PopulationRun) -> EndPoint:
    """The last recorded state of a flow."""
    return EndPoint(run.flow.first[-1], run.flow.top[-1], run.slope, run.flow.energy[-1], run.flow.grad_norm[-1],
                    run.captured[-1], run.effective_rank[-1])  # fmt: skip


ends = {
    "linear": flow_end(pop_runs["linear"]),
    "relu": flow_end(relu_run),
    "relu, polished": EndPoint(polished.first, polished.top, relu_run.slope, polished.energy, polished.grad_norm,
                               polished_captured, metrics.effective_rank(polished.first.unsqueeze(0))[0]),
}  # fmt: skip
pair_cos = {name: (end.first @ end.first.transpose(-1, -2)).abs() for name, end in ends.items()}
pop_final = pd.DataFrame([
    {"end": name, "init": i, "energy": end.energy[i].item(), "grad norm": end.grad_norm[i].item(),
     "eff. rank": end.effective_rank[i].mean().item(), "pattern tokens captured": end.captured[i].double().mean().item(),
     "min |cos| between filters": pair_cos[name][i].amin().item()}
    for name, end in ends.items() for i in pop_inits
])  # fmt: skip
half = len(relu_run.flow.steps) // 2
captured_changes = int((relu_run.captured[half:] != relu_run.captured[-1]).any(0).sum())
polish_changes = int((polished_captured != relu_run.captured[-1]).sum())
print(f"support {pop.support} points, {KP} RFs x {MP} filters, pattern tokens per RF {pop_n_plus.tolist()} "
      f"(mean {pop_n_plus.double().mean():.2f}); flows: linear {P.pop_steps} steps, ReLU {P.pop_relu_steps} steps, "
      f"then {polished.iterations} Newton steps inside its gates ('relu, polished')")  # fmt: skip


def span(values) -> str:
    """min .. max of one column; a value at float64 round-off level as the bound it meets, not as digits."""
    values = np.asarray(values, dtype=float)
    if np.all(np.abs(values) < ROUNDOFF):
        return claims.bound(np.abs(values).max(), ROUNDOFF)
    ends_shown = [claims.bound(v, ROUNDOFF) if abs(v) < ROUNDOFF else f"{v:.3g}" for v in (values.min(), values.max())]
    return " .. ".join(ends_shown)


print(pop_final.groupby("end", sort=False).agg(span).drop(columns="init").to_string())
for name, end in ends.items():
    captured_mean = [round(v, 2) for v in end.captured.double().mean(0).tolist()]
    print(f"{name:>14}: pattern tokens captured per RF (mean over inits) {captured_mean} "
          f"of {pop_n_plus.tolist()}")  # fmt: skip
print(f"ReLU: (init, RF) pairs whose captured-token count changed over the second half of the flow: "
      f"{captured_changes}; from the flow's end to the polished point: {polish_changes}; gates kept by the polish "
      f"in {int(polished.gates_kept.sum())} of {P.pop_n_inits} inits")  # fmt: skip
print(
    "ReLU flow: distance of its RF maps to the polished point's (max over inits) at steps "
    + ", ".join(f"{relu_run.flow.steps[t]}: {approach[t].max():.1e}" for t in (half // 2, half, -1))
    + f"; energy gap at the end {energy_gap[-1].min():.1e} .. {energy_gap[-1].max():.1e}; distance of the weights "
    f"themselves at the end {weight_distance.max():.2f} (max: mostly weights of filters with a small top-layer "
    "weight, which barely change the RF maps)"
)
tail = slice(half, None)  # the second half of the ReLU flow's records
tail_exponent = np.polyfit(np.log(np.array(relu_run.flow.steps[tail], dtype=float)),
                           np.log(relu_run.flow.grad_norm[tail].amax(1).numpy()), 1)[0]  # fmt: skip
linear_level = pop_runs["linear"].flow.grad_norm[-1].max().item()
relu_level = relu_run.flow.grad_norm[-1].max().item()
# the level to reach: the linear flow's, or the float64 round-off bound where the linear flow is at round-off
target_level = max(linear_level, ROUNDOFF)
target_text = (
    f"{linear_level:.1e}" if linear_level >= ROUNDOFF else f"round-off ({claims.bound(linear_level, ROUNDOFF)})"
)
steps_needed = relu_run.flow.steps[-1] * (target_level / relu_level) ** (1 / tail_exponent)
if tail_exponent < 0:
    print(f"ReLU flow: gradient norm (max over inits) ~ step^{tail_exponent:.2f} over the second half; at that rate "
          f"it would reach the linear flow's level, {target_text}, after about {steps_needed:.0e} steps")  # fmt: skip
else:
    print(f"ReLU flow: the gradient norm (max over inits) does not decay over the second half (fitted exponent "
          f"{tail_exponent:.2f})")  # fmt: skip
g_end = tld.riemannian_gradient(relu_run.flow.first[-1], relu_run.flow.top[-1], pop, relu_run.slope)[1].norm(dim=-1)
col_end = relu_run.flow.top[-1].norm(dim=1).view_as(g_end)  # [I, K, M] top-layer weight norm of each filter
col_worst = col_end.flatten(1).gather(1, g_end.flatten(1).argmax(1, keepdim=True))
print(f"ReLU flow, end: the filter with the largest gradient has top-layer weight norm {col_worst.median():.3f} "
      f"(median over inits), against {col_end.median():.3f} for all filters")  # fmt: skip

# Has the flow reached local maxima? Count the upward-curving directions of the Riemannian Hessian
# at each endpoint (eigenvalues above ASCENT_TOL times the largest |eigenvalue|; float64 round-off
# at a converged linear maximum stays below 1e-13 of it). One is enough to make the point a saddle.
ASCENT_TOL = 1e-8


def as_count(value: float):
    """A count kept as a float so that NaN (no spectrum) can propagate, as an int when it is finite."""
    return int(value) if np.isfinite(value) else value


ascent = {}
for name, end in ends.items():
    spectrum = tld.riemannian_hessian_spectrum(end.first, end.top, pop, end.slope)  # [I, P]
    upward = (spectrum > ASCENT_TOL * spectrum.abs().amax(-1, keepdim=True)).sum(-1).double()  # [I]
    ascent[name] = upward.masked_fill(~torch.isfinite(spectrum).all(-1), float("nan"))  # NaN: no spectrum, not 0
    shown = [as_count(a) for a in ascent[name].tolist()]
    print(f"{name:>14}: upward directions of the Riemannian Hessian, per init: {shown}")
saddle = ascent["relu"] > 0
# Dead gates. With one-hot tokens a negative weight w_km[t] is a dead gate: it only costs norm.
# At the flow's end: what does moving the live filters onto the orthant change? At the polished
# points (already on it): would switching a dead (filter, token) weight on raise E?
orthant = tld.dead_token_gain(relu_run.flow.first[-1], relu_run.flow.top[-1], pop)
dead_gain = tld.dead_token_gain(polished.first, polished.top, pop)
print(f"ReLU flow's end: energy gain from moving live filters onto the orthant (min over inits) "
      f"{(orthant.energy_projected - orthant.energy).min().item():.1e}; filters with no positive weight: "
      f"{int(orthant.dead_filters.sum())}")  # fmt: skip
print(f"ReLU, polished: largest first-order gain of switching on a dead weight, per init: "
      f"{[round(g, 3) for g in dead_gain.gain.tolist()]} (the remaining gradient norm: "
      f"{claims.bound(polished.grad_norm.max(), ROUNDOFF)})")  # fmt: skip
if saddle.any():
    print(f"ReLU flow's end: {int(saddle.sum())} of {P.pop_n_inits} endpoints are saddles within their gates, "
          f"gradient norm there {relu_run.flow.grad_norm[-1][saddle].max().item():.1e} (max)")  # fmt: skip

# %% [markdown]
# **Checks of the convergence.** Implementation checks: the linear flow's filters end parallel
# (1 − min |cos| ≤ 1e-6, the forced collapse) at a point with no upward Hessian direction (the
# positive control); the polish brings the ReLU gradient norm down to the linear flow's final
# level (or to its float64 stopping tolerance where that is lower) without opening or closing a
# gate, at points with no upward direction within their gates; as the flow runs its RF maps get
# closer to the polished point's (end over mid-run < 1), the polished energy is not below the
# flow's (≥ −1e-12, round-off), and the captured-token counts neither change between the flow's
# end and the polish nor over the flow's second half. Reported without a threshold: the flow's
# own final gradient norm, the energy change of moving its live filters onto the orthant, the
# first-order gain of switching on a dead gate at the polished points, and the flow endpoints
# that are saddles within their gates.

# %%
checks.implementation(
    "population, linear: 1 - min |cos| between an RF's filters (forced collapse)",
    "T2.5",
    measured=1 - pair_cos["linear"].min().item(),
    op="<=",
    threshold=1e-6,
    threshold_source="fixed point of the rank-one-top-layer flow (section 4), reached to the solver's gradient norm",
)
checks.implementation(
    "population, linear: upward directions of the Riemannian Hessian at the flow's end (max over inits)",
    "T2.5",
    measured=as_count(ascent["linear"].max().item()),
    op="==",
    threshold=0,
    threshold_source="a converged local maximum has none: the positive control of the saddle test below",
)
checks.implementation(
    "population, ReLU: Riemannian gradient norm after the polish (max over inits)",
    "T2.5",
    measured=polished.grad_norm.max().item(),
    op="<=",
    threshold=1e-10,
    threshold_source="a critical point to float64 round-off (1e-10, a fixed bound below the linear flow's final "
    "gradient norm printed above)",
)
checks.implementation(
    "population, ReLU: inits whose gates opened or closed during the polish",
    "T2.5",
    measured=int((~polished.gates_kept).sum()),
    op="==",
    threshold=0,
    threshold_source="the polish finishes the flow inside its gate pattern; a gate change would leave it",
)
checks.implementation(
    "population, ReLU: distance of the flow's RF maps to the polished point's, end over mid-run (max over inits)",
    "T2.5",
    measured=(approach[-1].max() / approach[half].max()).item(),
    op="<",
    threshold=1.0,
    threshold_source="the flow heads to the polished point: what it computes gets closer as it runs",
)
checks.implementation(
    "population, ReLU: energy of the polished point minus the flow's end (min over inits)",
    "T2.5",
    measured=energy_gap[-1].min().item(),
    op=">=",
    threshold=-1e-12,
    threshold_source="the flow ascends towards its limit, so the limit's energy is not below the flow's (round-off)",
)
checks.implementation(
    "population, ReLU: upward directions of the Riemannian Hessian at the polished points (max over inits)",
    "T2.5",
    measured=as_count(ascent["relu, polished"].max().item()),
    op="==",
    threshold=0,
    threshold_source="a local maximum within the gates has none; Newton could have converged to a saddle instead",
)
checks.implementation(
    "population, ReLU: (init, RF) pairs whose captured-token count differs between the flow's end and the polish",
    "T2.5",
    measured=polish_changes,
    op="==",
    threshold=0,
    threshold_source="the polish only finishes the flow: it should not change what the flow captured",
)
checks.implementation(
    "population, ReLU: (init, RF) pairs whose captured-token count changed over the second half of the run",
    "T2.5",
    measured=captured_changes,
    op="==",
    threshold=0,
    threshold_source="convergence of the reported quantity: a settled flow no longer changes what it captures",
)
checks.finding(
    "population, ReLU: the flow's final Riemannian gradient norm (max over inits)",
    "T2.5",
    measured=relu_run.flow.grad_norm[-1].max().item(),
    expected="at the linear flow's final gradient norm (the threshold of the polish check)",
    note=f"not reached by the flow: a power-law tail (exponent {tail_exponent:.2f} over the second half) from "
    "closed-gate weights and filters with a small top-layer weight; reached by the polish (checks above)",
)
checks.finding(
    "population, ReLU: energy change from moving the endpoints' live filters onto the orthant",
    "T2.5",
    per_seed=orthant.energy_projected - orthant.energy,
    expected="small: the flow is already shrinking these negative weights towards 0",
    note="zeroing dead weights scales a filter's live values up; this is where the gain below is measured",
)
checks.finding(
    "population, ReLU, converged: largest first-order gain of switching on a dead (filter, token) weight",
    "T2.5",
    per_seed=dead_gain.gain,
    expected="0 at a local maximum of the ReLU energy",
    note="positive at every polished point: a token that a live filter ignores would raise E if switched on, but "
    "ReLU's gradient is 0 on a dead gate, so the flow cannot see it. The converged points are maxima within "
    "their gates, not maxima of the energy",
)
checks.finding(
    "population, ReLU: flow endpoints that are saddles within their gates (an upward Hessian direction)",
    "T2.5",
    per_seed=saddle.double().masked_fill(ascent["relu"].isnan(), float("nan")),
    expected="0 if the flow had converged to local maxima",
    note="the flow had not converged there (weak upward curvature, left slowly); the polished points have none "
    "(check above). No upward direction is not proof of a maximum of the energy: the Hessian is taken within "
    "the current ReLU gate pattern, and the energy has kinks where a gate switches",
)
checks.show_new()

# %% [markdown]
# The population gradient as an exact identity (float64): at the start and at the end of the
# flow, autograd's $\nabla_{w_{km}}E$ equals
# $2\sum_{k'm'}(V^\top V)_{km,k'm'}\operatorname{Cov}(\tilde x_{km}, \tilde x'_{k'm'})\,w_{k'm'}$
# (`energy_gradient_closed_form`), and with linear h the matrices are the same for every filter
# of an RF (the population form of section 2).

# %%
POP_GRAD_TOL, POP_SPREAD_TOL = 1e-10, 1e-12  # float64 round-off of the gradient identity and of the linear spread
identity_err, pop_spread = [], {}
for act, run in pop_runs.items():
    for index in (0, -1):
        w_req = run.flow.first[index].clone().requires_grad_(True)
        energy = tld.population_energy(w_req, run.flow.top[index], pop, run.slope)
        (auto,) = torch.autograd.grad(energy.sum(), [w_req])
        closed = tld.energy_gradient_closed_form(run.flow.first[index], run.flow.top[index], pop, run.slope)
        identity_err.append(((auto - closed).flatten(1).norm(dim=1) / auto.flatten(1).norm(dim=1)).max().item())
    cov_end = tld.gated_covariances(run.flow.first[-1], pop, run.slope).view(P.pop_n_inits, KP, MP, KP * MP, DP, DP)
    pop_spread[act] = (cov_end - cov_end[:, :, :1]).flatten(2).norm(dim=-1) / cov_end.flatten(2).norm(dim=-1)
    spread_shown = (claims.bound(pop_spread[act].max(), POP_SPREAD_TOL) if act == "linear"
                    else f"max {pop_spread[act].max():.2f}, mean {pop_spread[act].mean():.2f}")  # fmt: skip
    print(f"{act:>6}: gradient identity, max relative error {claims.bound(np.max(identity_err[-2:]), POP_GRAD_TOL)}; "
          f"relative spread over an RF's filters of their matrices Cov(x~_km, .): {spread_shown}")  # fmt: skip

# %% [markdown]
# **Checks.** Identities (T2.5): the closed-form gradient equals autograd's to float64
# round-off (relative error ≤ 1e-10), and with linear h the matrices are the same for every
# filter of an RF to round-off (relative spread ≤ 1e-12).

# %%
checks.identity(
    "population: gradient = 2 sum (V^T V) Cov(x~, x~') w (max relative error)",
    "T2.5",
    measured=np.max(identity_err),
    op="<=",
    threshold=POP_GRAD_TOL,
    threshold_source="float64 round-off",
)
checks.identity(
    "population, linear: spread of the driving matrices over an RF's filters",
    "T2.5",
    measured=pop_spread["linear"].max(),
    op="<=",
    threshold=POP_SPREAD_TOL,
    threshold_source="h' = 1: identical matrices up to float64 round-off",
)
checks.show_new()

# %%
fig, axes = plt.subplots(2, 2, figsize=(plotting.FIGSIZE["grid"][0], 8.4), layout="constrained", sharex=True)
token_colors = sns.color_palette("husl", P.pop_vocab)
off = ~torch.eye(MP, dtype=torch.bool)
tokens_shown = set()  # the tokens whose colour the top panels use: the key lists them
for ax, act in zip(axes[0], ["relu", "linear"]):
    run = pop_runs[act]
    steps_axis = np.array(run.flow.steps)
    cos_ex = run.cosines[:, P.pop_example_init, 0]  # [T, M, V], RF 0
    final_best = cos_ex[-1].argmax(-1)
    for m in range(MP):
        tok = int(final_best[m])
        tokens_shown.add(tok)
        ax.plot(steps_axis, cos_ex[:, m, tok].numpy(), color=token_colors[tok], lw=1.2)
    w_unit = run.flow.first[:, P.pop_example_init, 0]
    pairwise = (w_unit @ w_unit.transpose(-1, -2)).abs()
    ax.plot(
        steps_axis, pairwise[:, off].mean(-1).numpy(), color="k", ls="--", lw=1.5, label="mean |cos| between filters"
    )
    ax.set(title=f"{act}: RF 0, init {P.pop_example_init} (colour: final best token)",
           ylabel="cosine with its final best token", ylim=(-0.05, 1.05))  # fmt: skip
    ax.legend(loc="lower right")
for act, run in pop_runs.items():
    steps_axis = np.array(run.flow.steps)
    axes[1, 0].semilogy(steps_axis, run.flow.grad_norm.amax(1).numpy(), color=plotting.COLORS[act], label=act)
    plus = run.captured.flatten(1).double().numpy()
    axes[1, 1].plot(steps_axis, plus.mean(1), color=plotting.COLORS[act], label=act)
    axes[1, 1].fill_between(steps_axis, plus.min(1), plus.max(1), color=plotting.COLORS[act], alpha=0.25)
last_step = relu_run.flow.steps[-1]
axes[1, 0].semilogy(np.array(relu_run.flow.steps), approach.amax(1).numpy(), color=plotting.COLORS["relu"], ls="--",
                    label="relu: distance of its RF maps to the polished ones")  # fmt: skip
axes[1, 0].semilogy([last_step], [polished.grad_norm.max().item()], marker="*", ms=12, ls="none",
                    color=plotting.COLORS["relu"], label=f"relu, polished ({polished.iterations} Newton steps)")  # fmt: skip
axes[1, 1].plot([last_step], [polished_captured.double().mean().item()], marker="*", ms=12, ls="none",
                color=plotting.COLORS["relu"], label="relu, polished")  # fmt: skip
axes[1, 1].axhline(pop_n_plus.double().mean().item(), color=plotting.COLORS["theory"], ls=":", lw=1.2,
                   label="pattern tokens per RF (mean)")  # fmt: skip
axes[1, 0].set(xlabel="step", ylabel="gradient norm / distance (max over inits)", title="Convergence")
axes[1, 1].set(xlabel="step", ylabel="pattern tokens captured per RF (cos ≥ 0.9)",
               title="all inits × RFs: mean, min–max")  # fmt: skip
below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.18)}  # under the panels: the curves stay visible
axes[1, 0].legend(**below)
axes[1, 1].legend(**below, ncol=2)
token_key = [
    plt.matplotlib.lines.Line2D([], [], color=token_colors[t], lw=2, label=f"token {t}") for t in sorted(tokens_shown)
]
# the key of both top panels, low in the linear panel: its filters settle high and leave the bottom empty
axes[0, 1].legend(handles=[*token_key, *axes[0, 1].get_legend_handles_labels()[0]], loc="lower right",
                  ncol=1 + (len(token_key) > 4), title="key of both top panels")  # fmt: skip
fig.suptitle("Population model (uniform α, exact, rank-one top layer): ReLU filters capture different tokens")
plotting.savefig(fig, FIG_DIR, "population_dynamics")

# %% [markdown]
# **What it shows.** Top: each line is one filter of RF 0, drawn as its cosine with the token it
# ends closest to, in that token's colour; the dashed line is the mean |cosine| between the RF's
# filters. ReLU: filters lock onto different tokens (several colours reaching 1) and stay
# apart. Linear: all filters converge to one direction (dashed → 1), a mixture rather than a
# token — the collapse the rank-one top layer forces. Bottom left: the linear flow reaches
# round-off; the ReLU flow's gradient norm decays much more slowly, and the distance of its RF
# maps to the polished point's (dashed) shrinks steadily as it runs: the flow is heading
# there. The star is the polished gradient norm, at or below the linear flow's. At the flow's endpoint the
# Hessian still finds upward directions for some inits (weak curvature, printed above): the
# flow had not yet left the neighbourhood of those saddles, and the remaining gradient sits on
# filters with a small top-layer weight (printed above). At the polished points there is no
# upward direction: they are local maxima **within their gate pattern**. They are not maxima
# of the ReLU energy: at every one, switching on a token that a live filter ignores (a
# dead-gate weight) raises E at first order (printed above), and ReLU's gradient is exactly 0
# on a dead gate, so no gradient flow takes that step. What ReLU learns here is what its
# gates allow. Bottom right: ReLU captures part of each RF's pattern tokens (dotted: how many
# there are), the same number at the flow's end and at the polished point (star); linear at
# most one per RF.
#
# **Prediction** (T2.5): at the converged (polished) points the filters of an RF capture more
# than one distinct pattern token on average (per init, interval above 1), since a parallel
# filter bank captures at most one. Reported beside it: the fraction of each RF's pattern
# tokens that is captured.

# %%
checks.prediction(
    "population, ReLU, converged: distinct pattern tokens captured per RF",
    "T2.5",
    per_seed=polished_captured.double().mean(-1),
    op=">",
    threshold=1.0,
    threshold_source="T2.5: a parallel filter bank captures at most 1 token; ReLU's gates let filters take "
    "different ones",
)
checks.finding(
    "population, ReLU: fraction of the RF's pattern tokens captured",
    "T2.5",
    per_seed=(polished_captured.double() / pop_n_plus.double()).mean(-1),
    expected="1 if every pattern token got a filter",
    note="rank-one top layer, uniform alpha",
)
checks.show_new()

# %% [markdown]
# ## Agreement and differences with the theory
#
# * **Which argument covers the paper's setting.** The paper trains with full BatchNorm. There
#   the rotation symmetry is broken (section 3a: the linear loss changes under rotation well
#   above round-off), so it cannot be the explanation in that setting; it is exact, and
#   carries the whole SGD trajectory, without BN or with mean-only BN. The driving-matrix
#   argument holds in every BN mode: with linear h the filters of an RF share their driving
#   matrices exactly, and BN only contributes a per-unit scale (section 2).
# * Linear networks with and without BN are tested alike: token-selective filters no more
#   common than chance (section 1) and no more token alignment than random rotations of
#   themselves (section 3c); their $\chi^+$ rises only a little with β and is reported against
#   random filters confined to the pattern-token span.
# * **Collapse or token blindness.** Whether trained linear filters also collapse onto fewer
#   directions than ReLU filters is the effective-rank prediction of section 1 (T2.1 read as a
#   collapse); its verdict is printed below, and the selectivity predictions do not rest on it.
#   Only the population model's rank-one top layer forces linear filters onto one direction
#   (section 4).
# * ReLU's selective fraction stays below 1: dead filters in the SGD runs. In the population
#   model the ReLU flow converges only after Newton steps inside its gate pattern finish its
#   power-law tail (section 4); the converged points are local maxima within their gates but
#   not of the energy: at every one a dead gate hides a direction that would raise it. The
#   captured-token counts are those of where the gradient flow goes, decided by its gates
#   along the way (our reading of this measurement, not a statement of the paper), and they
#   cover part of each RF's pattern tokens, not all.

# %% [markdown]
# ## Verdicts
#
# Every claim recorded above next to its evidence, with its verdict: predictions first (at a
# reduced scale, such as the `quick` profile, they are reported only, not counted as tests),
# then identities and implementation checks (not evidence), then findings. This cell also
# writes `claims.json`; it raises only for a broken computation (a non-finite value, or a
# failed identity or implementation check), never for a refuted or undecided prediction.

# %%
nb.finish()
