"""
Reports of ``scripts/benchmark.py`` from its runs' results: tables (pandas), aggregates and curves; a study's table.

rliable would give the interquartile mean, the probability of improvement and the stratified bootstrap, but rliable
1.2.0 does not import with pandas 3: it needs ``arch<8``, whose newest release (7.2.0) fails on import (``TypeError:
deprecate_kwarg() missing 1 required positional argument: 'new_arg_name'``), and ``arch`` 8.0 rejects the
``random_state`` keyword rliable passes (``TypeError: Only NumPy arrays and pandas DataFrames and Series are supported
in keyword arguments``). They are computed here, with rliable's definitions (tested in ``tests/test_benchmark.py``).
"""

import contextlib
import functools
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import trim_mean

#: ``results.csv``'s columns; ``time_<part>_s`` follow for each of :data:`TIME_PARTS`, then :data:`PROVENANCE`.
COLUMNS = """algo env_id seed n_timesteps env_steps final_mean final_std eval_episodes eval_timesteps auc threshold
threshold_steps threshold_wall_s train_wall_s eval_wall_s setup_s steps_per_s params peak_rss_mib rss_imports_mib
children_peak_rss_mib idle_fraction train_cpu_s steps_per_cpu_s cpu_budget_s""".split()
#: Parts of the training time: ``rollout``, ``updates`` and ``other`` measured by ``benchmark.TimedEvaluation``;
#: ``env``, ``inference`` and ``advantages`` only by the earlier version of the benchmark, which patched the model.
TIME_PARTS = ("env", "inference", "advantages", "updates", "other", "rollout")
#: What made each run (last columns of ``results.csv``): its code version, git commit, configuration and its hash.
PROVENANCE = ("code", "git_commit", "config", "config_hash")
Results = Sequence[Mapping[str, Any]]


def iqm(values: Any) -> float:
    """Interquartile mean of ``values`` (any shape): the mean after dropping ``floor(n / 4)`` at each end; NaN if none."""
    flat = np.asarray(values, dtype=float).ravel()
    return float(trim_mean(flat, 0.25)) if flat.size else float("nan")


def probability_of_improvement(x: Mapping[str, Any], y: Mapping[str, Any]) -> float:
    """
    Probability that a run of X beats a run of Y on a random task, ties counting half (Mann-Whitney): the mean over the
    tasks both ``x`` and ``y`` (run scores by task) have; NaN if none.
    """
    per_task = [np.mean(np.sign(np.subtract.outer(np.asarray(x[t], float), y[t])) / 2 + 0.5) for t in x if t in y]
    return float(np.mean(per_task)) if per_task else float("nan")


def stratified_bootstrap(statistic: Callable[..., float], samples: Sequence[Mapping[str, Any]], reps: int) -> list[float]:
    """
    A statistic and its 95% percentile interval, resampling each task's runs with replacement (seed 0).

    :param statistic: function of ``len(samples)`` mappings task -> run scores
    :param samples: the sample sets, one per argument of ``statistic``
    :param reps: number of resamples
    :return: ``[point, low, high]``
    """
    rng, data = np.random.default_rng(0), [{t: np.asarray(s, dtype=float) for t, s in x.items()} for x in samples]
    draw = lambda s: s[rng.integers(0, len(s), size=len(s))]  # noqa: E731
    values = np.array([statistic(*[{t: draw(s) for t, s in x.items()} for x in data]) for _ in range(reps)])
    low, high = np.nanquantile(values, [0.025, 0.975]) if np.isfinite(values).any() else (np.nan, np.nan)
    return [float(statistic(*data)), float(low), float(high)]


def normalized(score: float, low: float | None, high: float | None) -> float | None:
    """``(score - low) / (high - low)``: 0 at ``low`` (a random policy), 1 at ``high``; ``None`` if undefined."""
    return None if low is None or high is None or high == low else (score - low) / (high - low)


def config_name(result: Mapping[str, Any]) -> str | None:
    """
    The configuration a run was made with, as ``FILE [ENTRY]``: rl-zoo3's files as ``rl-zoo3 ppo.yml``, this
    repository's relative to its root, others by name; None for a result that does not record it.
    """
    if not result.get("hyperparams_file"):
        return None
    path, root = Path(result["hyperparams_file"]), Path(__file__).resolve().parent.parent
    name = f"rl-zoo3 {path.name}" if "rl_zoo3" in path.parts else path.name
    if path.is_relative_to(root) and ".venv" not in path.relative_to(root).parts:
        name = path.relative_to(root).as_posix()
    return f"{name} [{result.get('hyperparams_entry')}]"


def provenance(result: Mapping[str, Any]) -> dict[str, Any]:
    """A run's :data:`PROVENANCE` (``code`` "unrecorded" for a result written before runs recorded it)."""
    recorded = {"code": "unrecorded", **(result.get("provenance") or {})}
    return {key: config_name(result) if key == "config" else recorded.get(key) for key in PROVENANCE}


def runs_frame(results: Results, dtype: Any = object) -> pd.DataFrame:
    """``results.csv``, one row per run: ``dtype=object`` writes integers and blanks as given, ``None`` infers."""
    times = [{f"time_{p}_s": r.get("time_s", {}).get(p) for p in TIME_PARTS} for r in results]
    rows = [{**{c: r.get(c) for c in COLUMNS}, **t, **provenance(r)} for r, t in zip(results, times, strict=True)]
    return pd.DataFrame(rows, columns=[*COLUMNS, *(f"time_{p}_s" for p in TIME_PARTS), *PROVENANCE], dtype=dtype)


def markdown(df: pd.DataFrame, left: int = 2) -> str:
    """A Markdown table whose columns after the first ``left`` are right-aligned."""
    rule = ["---" if i < left else "---:" for i in range(df.shape[1])]
    return "".join("|" + "|".join(map(str, row)) + "|\n" for row in [df.columns, rule, *df.itertuples(index=False)])


def _fmt(value: Any, spec: str = ".1f") -> str:
    """``value`` by ``spec`` (``"s"``: seconds, ``"steps"``: 150k, 1M); missing: ``-``, or ``not reached`` for those."""
    if value is None or pd.isna(value):
        return "not reached" if spec in ("s", "steps") else "-"
    if spec == "steps":
        return f"{value / 1e3:g}k" if value < 1e6 else f"{value / 1e6:g}M"
    return (f"{value:.0f}" if value >= 100 else f"{value:.3g}") if spec == "s" else format(value, spec)


def seed_list(seeds: Sequence[Any]) -> str:
    """Seeds as ranges: ``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs = itertools.groupby(enumerate(sorted({int(s) for s in seeds})), key=lambda pair: pair[1] - pair[0])
    ranges = [[v for _, v in run] for _, run in runs]
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in ranges)


def _median_with_misses(values: Sequence[Any]) -> float | None:
    """Median where a missing value (never reached) counts as infinite; ``None`` when that median is infinite."""
    median = np.median(pd.Series(values, dtype=float).fillna(np.inf)) if len(values) else np.inf
    return float(median) if np.isfinite(median) else None


def _pooled_iqm(scores: Mapping[str, Any]) -> float:
    """IQM of the scores of every task of ``scores`` (task -> run scores) pooled."""
    return iqm(np.concatenate([np.asarray(x, dtype=float) for x in scores.values()]))


def verdict(p_improvement: Sequence[float]) -> str:
    """``win``/``loss`` if the interval of P(GPG > PPO) (``[point, low, high]``) lies above/below 1/2, else ``parity``."""
    return "win" if p_improvement[1] > 0.5 else "loss" if p_improvement[2] < 0.5 else "parity"


def _mean_normalized(gpg: Mapping[str, Any], ppo: Mapping[str, Any], randoms: Mapping[str, float]) -> float:
    """The mean over tasks of GPG's IQM with a random policy at 0 and PPO's IQM at 1 (NaN where PPO's is random's)."""
    values = [normalized(iqm(gpg[t]), randoms[t], iqm(ppo[t])) for t in randoms]
    return float(np.mean([np.nan if v is None else v for v in values])) if values else float("nan")


def overall(results: Results, tasks: Sequence[Any], reps: int, field: str = "final_mean") -> dict[str, Any]:
    """
    GPG against PPO over every task with runs of both, each task weighing the same and none left out: ``normalized``
    (:func:`_mean_normalized`) and ``p_improvement`` (averaged over tasks) of ``field``, with intervals from a stratified
    bootstrap (both algorithms' runs resampled within each task), and the :func:`verdict`.
    """
    runs = pd.DataFrame(results, columns=["algo", "env_id", field])
    scores = [{e: s.to_numpy(float) for e, s in runs[runs.algo == a].groupby("env_id")[field]} for a in ("gpg", "ppo")]
    randoms = {t.env_id: t.random_score for t in tasks if all(t.env_id in x for x in scores)}
    scores = [{e: x[e] for e in randoms} for x in scores]
    statistic = functools.partial(_mean_normalized, randoms=randoms)
    row = {"tasks": len(randoms), "normalized": stratified_bootstrap(statistic, scores, reps)}
    row["p_improvement"] = stratified_bootstrap(probability_of_improvement, scores, reps)
    return row | {"verdict": verdict(row["p_improvement"])}


def verdicts(results: Results, tasks: Sequence[Any], reps: int) -> list[dict[str, Any]]:
    """
    GPG against PPO per task with runs of both (their seeds may differ): per algorithm the IQM of the final returns with
    its 95% bootstrap interval, mean, worst run and runs below the threshold; ``normalized`` (GPG's IQM, random policy 0,
    PPO's IQM 1) and ``p_improvement`` (P(GPG run > PPO run), ties half) with intervals resampling both. ``verdict``:
    ``win``/``loss`` if the interval of P(GPG > PPO) lies above/below 1/2, else ``parity`` (scale-free, unlike the
    normalized ratio, whose sign flips where PPO does worse than a random policy).
    """
    rows = []
    for task in tasks:
        mine = [r for r in results if r["env_id"] == task.env_id]
        runs = {a: np.asarray([r["final_mean"] for r in mine if r["algo"] == a], dtype=float) for a in ("gpg", "ppo")}
        if not (runs["gpg"].size and runs["ppo"].size):
            continue
        row: dict[str, Any] = {"env_id": task.env_id}
        for algo, finals in runs.items():
            below = None if task.threshold is None else int(np.sum(finals < task.threshold))
            iqm_ci = stratified_bootstrap(_pooled_iqm, [{task.env_id: finals}], reps)
            row |= {f"{algo}_seeds": len(finals), f"{algo}_iqm": iqm_ci, f"{algo}_mean": float(finals.mean())}
            row |= {f"{algo}_worst": float(finals.min()), f"{algo}_below": below}
        both = overall(mine, [task], reps)  # one task: its normalized IQM, P(GPG > PPO) and verdict
        rows.append(row | {key: both[key] for key in ("normalized", "p_improvement", "verdict")})
    return rows


def search_effort(folder: Path, tasks: Sequence[Any]) -> list[list[Any]]:
    """
    How hard each side was searched on each task before a benchmark, from what ``folder`` keeps: the runs of its studies
    on tuning seeds (>= 100; ``result.json``, one per algorithm, task, seed, configuration, code and budget) and the
    trials of its Optuna studies (journal files, ``*.log``, whose study records the ``--optimize`` command; a pruned
    trial counted for the evaluations it reached). Full budget: the task's ``n_timesteps`` or more, untimed.

    :return: rows ``[env, algo, trials, configurations, runs, env steps (millions), full-budget configurations, runs]``
    """
    import optuna  # only here: the reports of sweeps without a search folder do not need it
    from tuning_report import load_studies  # tuning_report imports this module: imported when called, not at load

    budgets, rows, seen = {t.env_id: t.n_timesteps for t in tasks}, [], set()
    for path in sorted(folder.glob("*/**/result.json")):
        r = json.loads(path.read_text())
        made_by = r.get("provenance") or {}
        config = made_by.get("config_hash") or json.dumps(r["key"]["config"], sort_keys=True)
        timed = r.get("cpu_budget_s") or r["key"].get("time_budget_s")
        run = (r["algo"], r["env_id"], r["seed"], config, made_by.get("code"), r["n_timesteps"], timed)
        if r["env_id"] in budgets and r["seed"] >= 100 and run not in seen:
            seen.add(run)
            full = not timed and r["n_timesteps"] >= budgets[r["env_id"]]
            rows.append(dict(env_id=r["env_id"], algo=r["algo"], trial=0, config=config, steps=r["env_steps"], full=full))
    for path in sorted(folder.glob("**/*.log")):
        with open(path) as file, contextlib.suppress(ValueError, KeyError, AttributeError):
            if "op_code" not in json.loads(file.readline()):  # not a journal (a run's worker.log)
                continue
            for study in load_studies(path):
                command = study.user_attrs["command"]
                env_id, algo = re.search(r"--env (\S+)", command)[1], re.search(r"--algo (\S+)", command)[1]
                n, evaluations = (int(re.search(pattern, command)[1]) for pattern in (r" -n (\d+)", r"--n-evaluations (\d+)"))
                for trial in study.trials:
                    complete = trial.state == optuna.trial.TrialState.COMPLETE
                    done = n if complete else n * len(trial.intermediate_values) // evaluations
                    row = dict(env_id=env_id, algo=algo, trial=1, config=f"{path}:{trial.number}", steps=done)
                    rows.append(row | {"full": done >= budgets.get(env_id, np.inf)})
    frame = pd.DataFrame(rows, columns=["env_id", "algo", "trial", "config", "steps", "full"])
    order = {t.env_id: i for i, t in enumerate(tasks)}
    return [
        [e, a, int(g.trial.sum()), g.config.nunique(), len(g), f"{g.steps.sum() / 1e6:.1f}", g[g.full].config.nunique(),
         int(g.full.sum())]
        for (_, e, a), g in frame.assign(order=frame.env_id.map(order)).groupby(["order", "env_id", "algo"])
    ]  # fmt: skip


def history_key(result: Mapping[str, Any]) -> str:
    """The record of ``history.json`` a run belongs to: its algorithm, task, configuration hash and code version."""
    p = provenance(result)
    return f"{result['algo']} {result['env_id']} {p['config_hash'] or '-'} {p['code']}"


def update_history(history: Mapping[str, Any], results: Results) -> dict[str, dict[str, Any]]:
    """
    ``history`` (``history.json``: each algorithm, task, configuration and code version a report of the folder has shown,
    with each seed's final return) plus the runs of ``results``. Records of earlier configurations or code versions stay,
    so that figures seen before a change are not lost; a seed shown again under a record keeps its latest value.
    """
    records = {key: {**record, "finals": dict(record["finals"])} for key, record in history.items()}
    for r in results:
        made = {k: v for k, v in provenance(r).items() if k != "git_commit"}  # the commit changes with docs and data
        record = records.setdefault(history_key(r), {"algo": r["algo"], "env_id": r["env_id"], **made, "finals": {}})
        record["finals"][str(r["seed"])] = float(r["final_mean"])
    return records


def looks(history: Mapping[str, Any], results: Results) -> list[dict[str, Any]]:
    """
    The records of ``history`` (:func:`update_history`, ``results`` included) for each task and algorithm of ``results``,
    those holding its runs (``shown``) first. ``looks`` counts the records holding any seed of those runs: more than 1
    when the configuration or code changed after the seeds were seen.
    """
    rows = []
    for env_id, algo in dict.fromkeys((r["env_id"], r["algo"]) for r in results):
        runs = [r for r in results if (r["env_id"], r["algo"]) == (env_id, algo)]
        shown, seeds = {history_key(r) for r in runs}, {str(r["seed"]) for r in runs}
        keys = [k for k, rec in history.items() if (rec["env_id"], rec["algo"]) == (env_id, algo)]
        keys.sort(key=lambda k: (k not in shown, k))
        n_looks = sum(bool(seeds & set(history[k]["finals"])) for k in keys)
        for key in keys:
            finals = np.array(list(history[key]["finals"].values()), dtype=float)
            rows.append({
                **history[key], "looks": n_looks, "shown": key in shown, "seeds": seed_list(history[key]["finals"]),
                "runs": finals.size, "iqm": iqm(finals), "mean": float(finals.mean()), "worst": float(finals.min()),
            })  # fmt: skip
    return rows


def plot_curves(out: Path, results: Results, algos: Sequence[str], thresholds: Mapping[str, Any]) -> None:
    """
    ``curves/<env>.png``: evaluation return against env steps and training seconds, mean and min-max over seeds.

    :param results: run results (evaluation points that some seeds lack are left out)
    :param algos: algorithms, in legend order
    :param thresholds: threshold by task (a dashed line)
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return print("matplotlib is not installed: no learning-curve plots (pip install 'sb3-gpg[plots]')")
    (out / "curves").mkdir(parents=True, exist_ok=True)
    curves = pd.DataFrame([{k: r[k] for k in ("algo", "env_id", "seed")} | p for r in results for p in r["curve"]])
    for env_id, task_curves in curves.groupby("env_id"):
        fig = Figure(figsize=(11, 4))
        axes = fig.subplots(1, 2, sharey=True)
        for algo, runs in ((a, task_curves[task_curves["algo"] == a]) for a in algos if a in set(task_curves["algo"])):
            n_seeds, at = runs["seed"].nunique(), runs.groupby("nominal", sort=False)  # at each evaluation
            points = at[["steps", "wall_s", "mean"]].mean().assign(low=at["mean"].min(), high=at["mean"].max())
            points = points[at.size() == n_seeds]
            for axis, field in zip(axes, ("steps", "wall_s"), strict=True):
                p = points.sort_values(field, kind="stable")
                (line,) = axis.plot(p[field], p["mean"], label=f"{algo.upper()} ({n_seeds} seeds)")
                axis.fill_between(p[field], p["low"], p["high"], color=line.get_color(), alpha=0.2)
        for axis, label in zip(axes, ("env steps", "training wall-clock (s)"), strict=True):
            if thresholds.get(env_id) is not None:
                axis.axhline(thresholds[env_id], color="grey", linestyle="--", linewidth=1, label="threshold")
            axis.set(xlabel=label)
            axis.grid(alpha=0.3)
        axes[0].set(ylabel="evaluation return (deterministic)")
        axes[0].legend()
        fig.suptitle(f"{env_id}: mean over seeds, band = min-max")
        fig.tight_layout()
        fig.savefig(out / "curves" / f"{env_id}.png", dpi=100)


def reports(
    results: Results,
    tasks: Sequence[Any],
    reps: int,
    command: str,
    equal: Results = (),
    history: Mapping[str, Any] | None = None,
    search: Sequence[Sequence[Any]] = (),
) -> dict[str, Any]:
    """
    The report files of a sweep by name, text or an object to write as JSON: ``results.csv`` (per seed),
    ``aggregate.json``, ``benchmark.md`` and its main tables as ``tables/<name>.csv``, with the same cells.

    :param reps: bootstrap resamples
    :param command: command line, quoted in ``benchmark.md``
    :param equal: GPG's runs trained for PPO's median training CPU seconds (``benchmark.py --equal-compute``; earlier
        runs: wall-clock seconds), compared with PPO's in ``benchmark.md`` and ``aggregate.json``'s ``equal_compute``
    :param history: the folder's ``history.json`` (:func:`update_history`; empty for the first report): given, the
        files include it with ``results`` added, and ``benchmark.md`` a section of the looks at each task's runs
    :param search: :func:`search_effort`'s rows: given, ``benchmark.md`` shows how hard each side was searched
    """
    per_task = verdicts(results, tasks, reps)
    ppo_runs = [r for r in results if r["algo"] == "ppo"]
    at_ppo_time = verdicts([*equal, *ppo_runs], tasks, reps) if equal else []
    totals = {"final return": overall(results, tasks, reps)}
    totals |= {"final return at equal compute": overall([*equal, *ppo_runs], tasks, reps)} if equal else {}
    totals |= {"AUC": overall(results, tasks, reps, "auc")}
    interval = lambda v: f"{v[0]:.1f} [{v[1]:.1f}, {v[2]:.1f}]" if abs(v[0]) >= 10 else f"{v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}]"  # noqa: E731
    intervals = lambda v: [interval(v[k]) for k in ("gpg_iqm", "ppo_iqm", "normalized", "p_improvement")]  # noqa: E731
    intervals_columns = "GPG IQM [95% CI]|PPO IQM [95% CI]|normalized [95% CI]|P(GPG > PPO) [95% CI]"
    both = lambda v, key: f"{v[f'gpg_{key}']:.1f} / {v[f'ppo_{key}']:.1f}"  # noqa: E731
    below = lambda v, a: "-" if v[f"{a}_below"] is None else f"{v[f'{a}_below']}/{v[f'{a}_seeds']}"  # noqa: E731
    verdicts_md = [
        [v["env_id"], *intervals(v), both(v, "mean"), both(v, "worst"), f"{below(v, 'gpg')} / {below(v, 'ppo')}", v["verdict"]]
        for v in per_task
    ]
    cells = lambda v: [interval(v["normalized"]), v["verdict"]] if v else ["-", "-"]  # noqa: E731
    by_env = {v["env_id"]: v for v in at_ppo_time}
    summary_md = [[v["env_id"], *cells(v), *(cells(by_env.get(v["env_id"])) if equal else [])] for v in per_task]
    n_tasks = totals["final return"]["tasks"]
    summary_md += [[f"all {n_tasks} tasks", *(x for k, t in totals.items() if k != "AUC" for x in cells(t))]] * bool(n_tasks)
    cpu = bool(equal) and all(r.get("cpu_budget_s") is not None for r in equal)  # else wall-clock budgets (earlier runs)
    budget, spent = ("cpu_budget_s", "train_cpu_s") if cpu else ("time_budget_s", "train_wall_s")
    budgets = {r["env_id"]: r[budget] for r in equal}
    medians = {e: float(np.median([r[spent] for r in equal if r["env_id"] == e])) for e in budgets}
    equal_md = [
        [v["env_id"], _fmt(budgets[v["env_id"]], "s"), _fmt(medians[v["env_id"]], "s"), *intervals(v), both(v, "worst"),
         v["verdict"]]
        for v in at_ppo_time
    ]  # fmt: skip
    order, returns = {t.env_id: i for i, t in enumerate(tasks)}, [r["episode_returns"] for r in results]
    runs = runs_frame(results, dtype=None).assign(order=lambda df: df["env_id"].map(order), returns=returns)
    zoo = [  # the episodes pooled over seeds
        [a, e, f"{x.mean():.3f}", f"{x.std(ddof=0):.3f}", _fmt(g.n_timesteps.iloc[0], "steps"), g.eval_timesteps.sum(), x.size]
        for (a, _, e), g in runs.groupby(["algo", "order", "env_id"])
        for x in [pd.Series(np.concatenate(g["returns"].tolist()))]
    ]
    details = [
        [e, a, len(g), f"{g['final_mean'].mean():.1f} +/- {g['final_mean'].std(ddof=0):.1f}", f"{g['auc'].mean():.1f}",
         _fmt(g["threshold"].iloc[0], "g"), f"{_fmt(_median_with_misses(g['threshold_steps']), 'steps')} "
         f"({g['threshold_steps'].notna().sum()}/{len(g)})", _fmt(_median_with_misses(g["threshold_wall_s"]), "s"),
         f"{g['steps_per_s'].mean():.0f}", _fmt(g["train_wall_s"].mean(), "s"), g["params"].iloc[0],
         f"{g['peak_rss_mib'].mean():.0f}", _fmt(100 * g["time_rollout_s"].astype(float).div(g["train_wall_s"]).mean(), ".0f"),
         _fmt(100 * g["time_updates_s"].astype(float).div(g["train_wall_s"]).mean(), ".0f")]
        for (e, a), g in runs.groupby(["env_id", "algo"])
    ]  # fmt: skip
    configurations = [
        [e, a, config or "unrecorded", ", ".join(sorted(set(g["config_hash"].dropna()))) or "-",
         ", ".join(sorted(set(g["code"]))), seed_list(g["seed"])]
        for (_, e, a, config), g in runs.fillna({"config": ""}).groupby(["order", "env_id", "algo", "config"])
    ]  # fmt: skip
    estimates = [
        [k, t["tasks"], interval(t["normalized"]), interval(t["p_improvement"]), t["verdict"]] for k, t in totals.items()
    ]
    frame = lambda rows, columns: pd.DataFrame(rows, columns=columns.split("|"))  # noqa: E731
    table = lambda rows, columns, left=2: markdown(frame(rows, columns), left)  # noqa: E731
    history = None if history is None else update_history(history, results)
    looks_rows = [] if history is None else looks(history, results)
    looks_md = [
        [x["env_id"], x["algo"], x["looks"] if x["shown"] else "", "this report" if x["shown"] else "earlier",
         x["config"] or "unrecorded", x["config_hash"] or "-", x["code"], x["seeds"], x["runs"], f"{x['iqm']:.1f}",
         f"{x['mean']:.1f}", f"{x['worst']:.1f}"]
        for x in looks_rows
    ]  # fmt: skip
    looks_section = f"""
## Looks: every configuration and code version shown

Each configuration and code version whose runs a report of this folder has shown (`history.json`), by task and
algorithm. `looks`: how many of them hold seeds of this report's runs; 1 means those seeds were seen under the reported
configuration and code only, more that the configuration or the code changed after they were seen. `earlier` rows
keep the figures shown before (on their own seeds).

{table(looks_md, "env|algo|looks|shown|configuration|config hash|code|seeds|runs|IQM|mean|worst")}"""
    details_columns = "env|algo|seeds|final return|AUC|threshold|steps to threshold|s to threshold|steps/s|train s|params"
    details_columns += "|peak RSS MiB|rollout %|updates %"
    summary_text = f"""Per task, GPG's final return normalized with a random policy at 0 and PPO's at 1 (GPG's IQM over its
runs, with its 95% bootstrap interval), and the verdict from P(GPG > PPO) (both as below). `all {n_tasks} tasks`: the
mean of the tasks' normalized IQMs, each task weighing the same (none is left out), and P(GPG > PPO) averaged over the
tasks.{" Left: at the same step budget; right: at equal compute (below)." if equal else ""}"""
    aggregate_columns = "metric|tasks|normalized [95% CI]|P(GPG > PPO) [95% CI]|verdict"
    summary_columns = "env|normalized [95% CI]|verdict" + "|at equal compute: normalized [95% CI]|verdict" * bool(equal)
    verdicts_columns = f"env|{intervals_columns}|mean GPG / PPO|worst GPG / PPO|below threshold GPG / PPO|verdict"
    unit = "CPU s" if cpu else "s"
    equal_columns = f"env|PPO's median {unit}|GPG's median {unit}|{intervals_columns}|worst GPG / PPO|verdict"
    how = (
        "training CPU seconds on the task (`benchmark.py --equal-compute`: the training process's CPU time, one torch "
        "thread per run, evaluations excluded; PPO's from its runs of this report), its step budget that time at GPG's "
        "median steps per CPU second"
        if cpu
        else "training wall-clock seconds on the task, its step budget that time at GPG's median steps per second"
    )
    equal_section = f"""
## GPG at equal compute

Each GPG seed trained again for PPO's median {how}, so that schedules end near it. GPG's final return then against
PPO's final return, as above.

{table(equal_md, equal_columns, 1)}"""
    search_columns = "env|algo|Optuna trials|configurations|runs|M env steps|full budget: configurations|runs"
    search_section = f"""
## How hard each side was searched

Everything the studies and Optuna studies of this repository ran on tuning seeds (100 and up) before the benchmark, per
task and algorithm: Optuna trials (a pruned one counted for the steps it ran), configurations (each trial one), runs
(seeds x configurations x code versions) and their env steps; then the configurations and runs at the task's full
budget. PPO's rl-zoo3 entries were tuned by rl-zoo3's authors; that search is not counted here.

{table(search, search_columns)}"""
    text = f"""# GPG vs PPO (rl-zoo3)

Command: `{command}`

## Summary

{summary_text}

{table(summary_md, summary_columns, 1)}
## Per task: GPG against PPO, with intervals

Final return (deterministic evaluation after `n_timesteps` env steps). IQM: interquartile mean over the runs, with its
95% bootstrap interval. `normalized`: GPG's IQM with a random policy at 0 and PPO's IQM at 1, the interval from
resampling both algorithms' runs. P(GPG > PPO): chance that a GPG run beats a PPO run (ties count half). Verdict:
`win` if the interval of P(GPG > PPO) lies above 0.5, `loss` if below 0.5, else `parity`.

{table(verdicts_md, verdicts_columns, 1)}{equal_section if equal else ""}{search_section if search else ""}
## Performance of trained agents (rl-zoo3 format)

Deterministic evaluation after `n_timesteps` env steps, pooled over seeds (`eval_episodes` = seeds x episodes).

{table(zoo, "algo|env_id|mean_reward|std_reward|n_timesteps|eval_timesteps|eval_episodes")}
## Details (mean over seeds; +/- is the std over seeds)

`AUC`: mean evaluation return over training. `to threshold`: median over seeds of the env steps / training seconds
of the first evaluation at or above the threshold, a seed that never gets there counting as infinite; `(k/n)` seeds
got there. Seconds and `steps/s` exclude evaluations. `peak RSS`: the run's whole process. `rollout %`, `updates %`:
shares of training time from `on_rollout_start` to `on_rollout_end` and from there to the next rollout (`train()`).

{table(details, details_columns)}
## Configurations and code

What made the runs: the configuration file and its entry, the hash of the entry's values, the code version (for GPG
the package version and a hash of its sources; for PPO Stable-Baselines3's version) and the seeds.

{table(configurations, "env|algo|configuration|config hash|code|seeds", 6)}{"" if history is None else looks_section}
## Aggregate over tasks

Each task weighing the same: the mean over tasks of GPG's IQM normalized with a random policy at 0 and PPO's IQM at 1,
and P(GPG > PPO) averaged over tasks, with 95% percentile intervals from a stratified bootstrap ({reps} resamples of
each task's runs of both algorithms). AUC: the mean evaluation return over training, normalized alike.

{table(estimates, aggregate_columns, 1)}
## Tasks

{markdown(pd.DataFrame([vars(t) for t in tasks]).astype(object).fillna("none"), 1)}
Learning curves: `curves/<env>.png`. Per-seed numbers: `results.csv`; each run's curve and logs: its `result.json`.
"""
    files = {
        "results.csv": runs_frame(results).to_csv(index=False),
        "aggregate.json": {"overall": totals, "verdicts": per_task, "equal_compute": at_ppo_time},
        "benchmark.md": text,
    }
    # The main tables also as CSV, cell for cell as in benchmark.md, for the documentation's csv-table directives.
    tables = {"summary": (summary_md, summary_columns), "verdicts": (verdicts_md, verdicts_columns),
              "equal_compute": (equal_md, equal_columns) if equal else None,
              "details": (details, details_columns), "search": (search, search_columns) if search else None,
              "aggregate": (estimates, aggregate_columns)}  # fmt: skip
    files |= {f"tables/{name}.csv": frame(*t).to_csv(index=False) for name, t in tables.items() if t is not None}
    if history is not None:
        files["history.json"] = history
        files["aggregate.json"]["looks"] = {f"{x['algo']} {x['env_id']}": x["looks"] for x in looks_rows if x["shown"]}
    return files


def study_report(
    study: Path, variants: Sequence[Mapping[str, Any]], tasks: Mapping[str, Any], results: Mapping[tuple, Any]
) -> dict[str, str]:
    """
    A study's ``report.md`` and ``report.csv``: per task and variant, the finished runs of the variant's seeds, their
    final returns, mean, IQM and worst, the normalized mean (a random policy 0, the variant's ``reference`` 1, on the
    seeds both have), the runs at the study's ``floors`` (a task's return when every evaluation episode fails), the
    means of the study's ``columns`` (``idle_fraction`` or keys of ``log_means``) and the code versions.

    :param study: the study file (its ``question``, ``rule``, ``floors`` and ``columns`` are read)
    :param variants: the study's variants (``benchmark.load_study``)
    :param tasks: the tasks (``benchmark.Task``, for the random score) by env id
    :param results: the finished runs with the study's settings (``benchmark.finished_result``), by variant, task
        and seed: a result of other settings left in a variant's folder is not one of them
    """
    import yaml

    meta = yaml.safe_load(study.read_text())
    columns, floors = meta.get("columns", []), meta.get("floors", {})
    runs: dict[tuple[str, str], dict[int, Any]] = {}  # (variant, task) -> {seed: result}
    for (variant, task, seed), result in results.items():
        runs.setdefault((variant, task), {})[seed] = result
    rows = []
    for task in tasks:
        for v in variants:
            if not (mine := runs.get((v["name"], task))):
                continue
            reference = runs.get((v["reference"], task), {}) if v.get("reference") else {}
            common = sorted(set(mine) & set(reference))
            finals = np.array([mine[s]["final_mean"] for s in sorted(mine)])
            means = [float(np.mean([r[s]["final_mean"] for s in common])) for r in (mine, reference)] if common else []
            score = normalized(means[0], tasks[task].random_score, means[1]) if common else None
            extra = {c: np.mean([r.get(c, r["log_means"].get(c, np.nan)) or np.nan for r in mine.values()]) for c in columns}
            rows.append(
                {"task": task, "variant": v["name"], "algo": v["algo"], "seeds": seed_list(mine),
                 "final returns": " ".join(f"{f:.1f}" for f in finals), "mean": finals.mean(), "IQM": iqm(finals),
                 "worst": finals.min(), "reference": v.get("reference") or "-", "normalized": score,
                 **({"at floor": int(np.sum(finals <= floors[task]))} if task in floors else {}), **extra,
                 "code": ", ".join(sorted({r.get("provenance", {}).get("code", "unrecorded") for r in mine.values()}))}
            )  # fmt: skip
    table = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["task", "variant", "mean", "IQM", "worst"])
    shown = table.round(3).astype(object).fillna("-")
    for name in ("mean", "IQM", "worst"):
        shown[name] = table[name].map(lambda x: f"{x:.1f}")
    if "at floor" in table:
        shown["at floor"] = table["at floor"].map(lambda x: "-" if pd.isna(x) else f"{x:.0f}")
    text = f"""# {meta.get("title", study.parent.name)}

{meta.get("question", "").strip()}

**Rule.** {meta.get("rule", "none written").strip()}

Runs: `<variant's folder>/runs/<algo>/<task>/seed<seed>/result.json`, beside the study file `{study.name}`; final
return: the mean of the final deterministic evaluation's episodes. Written by `python scripts/benchmark.py --study
{study.as_posix()} --report-only`.

{markdown(shown, 4)}"""
    return {"report.md": text, "report.csv": table.to_csv(index=False)}
