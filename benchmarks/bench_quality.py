"""Does each method do what its paper claims? Trains a grid of recipes on the built-in digits (32 px), measures
each with the `builtin:digits` detector, and writes docs/results.md (a table and a sample grid per cell,
ADA's p and r_t over time in a plot) from docs/results.json, which keeps every measured cell.

Cells:
- limited data: 100, 300 and all 1797 images x {StyleGAN2, +ADA, +DiffAugment, +FSMR, +ADA+FSMR}, two seeds
  each, LIMITED_KIMG kimg per cell. The subsets hold the same number of images of every digit (seeded);
  every cell is measured against the full set.
- the family at equal wall time (FAMILY_MINUTES each) on the full set: StyleGAN2, StyleGAN v1 and ProGAN
  (grown), MSG-StyleGAN, EqGAN-SA with and without its alignment loss.

Measured cells are skipped, so an interrupted grid continues where it stopped; a cell cut short is trained
again from the start. On the project's shared 2-core machine, with two runs side by side (one torch thread
each: `--cell '*-s0'` and `--cell '*-s1'`), a limited-data cell took 4-9 minutes (ADA and FSMR the slower
ones), a family cell FAMILY_MINUTES plus seconds of measuring: the whole grid about 2.5 hours.

    python benchmarks/bench_quality.py --list              # cells, measured or not
    python benchmarks/bench_quality.py                     # every cell not measured yet (hours)
    python benchmarks/bench_quality.py --cell ada-n100-s0  # one cell; also a pattern: --cell 'ada-*'
    python benchmarks/bench_quality.py --report            # rewrite results.md and the plot from the JSON
    python benchmarks/bench_quality.py --cell sg2-n100-s0 --kimg 2 --out quick-try   # a quick try elsewhere
"""

from __future__ import annotations

import argparse
import fcntl
import fnmatch
import json
import os
import platform
import shlex
import shutil
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from styleforge.data.build import build_dataset
from styleforge.data.layout import METADATA_NAME
from styleforge.data.output import AtomicOutput
from styleforge.losses.alignment import AttentionAlignment
from styleforge.metrics.floor import copying_the_training_set, quality_with_floor
from styleforge.networks.heatmaps import random_heatmaps
from styleforge.networks.persistence import load_network
from styleforge.tools import train_cmd
from styleforge.training.loop import Trainer, TrainingDiverged
from styleforge.training.report import read_stats

# Each recipe as `styleforge train` options, on top of BASE (README.md, docs/family.md): the papers' losses,
# regularizers, learning rates and growing, with BASE's small networks; every R1 recipe keeps BASE's gamma 0.05
# (R1 weights scale with the resolution: the official gamma 10 is for 1024 px), so the family compares alike.
BASE = "--cfg cpu --cond --workers 0 --grid-seeds 40"
RECIPES = {
    "sg2": "",
    # --ada-kimg 20 (official 500, for runs of thousands of kimg): p can go from 0 to 1 in 20 of a cell's 50 kimg.
    "ada": "--aug ada --ada-kimg 20",
    "diffaug": "--aug diffaug",
    "fsmr": "--fsmr-weight 0.05",
    "ada-fsmr": "--aug ada --ada-kimg 20 --fsmr-weight 0.05",
    "sg1-grown": "--g stylegan1 --d stylegan1 --r1-interval 0 --pl-interval 0 --pl-weight 0 --glr 0.001 "
                 "--dlr 0.001 "
                 "--grow --grow-init-res 8 --grow-stable-kimg 10 --grow-fade-kimg 10",
    "progan-grown": "--g progan --d progan --loss wgangp --r1-interval 0 --pl-interval 0 --pl-weight 0 --glr 0.001 "
                    "--dlr 0.001 "
                    "--grow --grow-init-res 4 --grow-stable-kimg 10 --grow-fade-kimg 10",
    # MSG-StyleGAN as published: the StyleGAN v1 generator at every scale (--cfg msg-stylegan's settings).
    "msg-stylegan": "--g msg-stylegan1 --d msg --loss msg --r1-interval 0 --pl-interval 0 --pl-weight 0 "
                    "--style-mixing 0 --glr 0.003 --dlr 0.003",
    "eqgan-sa": "--align-weight 1 --pl-weight 0 --style-mixing 0",
    "eqgan-sa-noalign": "--sel --pl-weight 0 --style-mixing 0",
}
LIMITED_RECIPES = ("sg2", "ada", "diffaug", "fsmr", "ada-fsmr")
FAMILY_RECIPES = ("sg2", "sg1-grown", "progan-grown", "msg-stylegan", "eqgan-sa", "eqgan-sa-noalign")
LIMITED_SIZES = (100, 300, 1797)
LIMITED_SEEDS = (0, 1)
LIMITED_KIMG = 40
FAMILY_MINUTES = 10
DISCUSSION_MARKER = "<!-- What the results say: written by hand below this line; the script keeps it. -->"
RESOLUTION = 32
FULL = 1797


@dataclass(frozen=True)
class Cell:
    name: str
    group: str  # "limited" (fixed kimg) or "family" (fixed wall time)
    recipe: str
    images: int
    seed: int


def all_cells() -> list[Cell]:
    cells = [Cell(f"{recipe}-n{n}-s{seed}", "limited", recipe, n, seed)
             for n in LIMITED_SIZES for recipe in LIMITED_RECIPES for seed in LIMITED_SEEDS]
    return cells + [Cell(f"family-{recipe}", "family", recipe, FULL, 0) for recipe in FAMILY_RECIPES]


def recipe_options(recipe: str) -> dict:
    """The recipe's train options, parsed by `styleforge train`'s own parser (so they are valid options)."""
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    return train_cmd.user_options(parser.parse_args(shlex.split(f"{BASE} {RECIPES[recipe]}")))


# --- data -------------------------------------------------------------------------------------------
def digits_data(workdir: Path, images: int) -> Path:
    """The digits at 32 px, all of them or `images` of them with the same count of every digit (seeded)."""
    full = workdir / f"digits{RESOLUTION}.zip"
    if not full.exists():
        build_dataset("builtin:digits", full, resolution=RESOLUTION, progress=False)
    if images >= FULL:
        return full
    subset = workdir / f"digits{RESOLUTION}-n{images}.zip"
    if not subset.exists():
        write_balanced_subset(full, subset, images)
    return subset


def write_balanced_subset(source: Path, dest: Path, count: int, seed: int = 0) -> None:
    """Copies `count` images of the data set ZIP `source`, the same number of each class, with their labels."""
    with zipfile.ZipFile(source) as z:
        metadata = json.loads(z.read(METADATA_NAME))
        names, classes = zip(*metadata["labels"])
        classes = np.asarray(classes)
        num_classes = len(metadata["class_names"])
        if count % num_classes:
            raise ValueError(f"{count} images do not split evenly into {num_classes} classes")
        rng = np.random.default_rng(seed)
        chosen = np.sort(np.concatenate([rng.choice(np.flatnonzero(classes == k), count // num_classes,
                                                    replace=False) for k in range(num_classes)]))
        with AtomicOutput(dest) as out:
            for i in chosen:
                out.write(names[i], z.read(names[i]))
            out.write(METADATA_NAME, json.dumps({**metadata, "labels": [metadata["labels"][i] for i in chosen],
                                                 "subset": f"{count} images, {count // num_classes} per class, "
                                                           f"seed {seed}"}).encode())


# --- one cell ---------------------------------------------------------------------------------------
def curves(run_dir: Path) -> dict[str, list[float]]:
    """Per tick: kimg, ADA's p (absent without ADA) and r_t = E[sign(D(real))] (every recipe)."""
    out: dict[str, list[float]] = {"kimg": [], "p": [], "rt": []}
    for entry in read_stats(run_dir / "stats.jsonl"):
        out["kimg"].append(entry["Progress/kimg"]["mean"])
        out["p"].append(entry.get("Progress/augment", {}).get("mean", float("nan")))
        out["rt"].append(entry.get("Loss/signs/real", {}).get("mean", float("nan")))
    return out


def uses_heatmaps(cell: Cell) -> bool:
    """Whether the recipe's G has EqGAN-SA's heatmaps (the alignment loss implies them)."""
    options = recipe_options(cell.recipe)
    return bool(options.get("sel") or options.get("align_weight"))


def copy_name(images: int) -> str:
    return f"copy-n{images}"


def measure_copying(workdir: Path, images: int) -> dict:
    """The numbers of copying the `images` training images of the limited-data cells (see the report)."""
    numbers = copying_the_training_set(digits_data(workdir, images), digits_data(workdir, FULL))
    return dict(name=copy_name(images), group="copy", images=images, threads=torch.get_num_threads(), numbers=numbers)


def run_cell(cell: Cell, workdir: Path, out: Path, kimg: float, minutes: float) -> dict:
    options = recipe_options(cell.recipe)
    options.update(data=str(digits_data(workdir, cell.images)), seed=cell.seed, desc=cell.name,
                   outdir=str(workdir / "runs"), threads=torch.get_num_threads())
    if cell.group == "family":
        options.update(time_budget=minutes * 60, kimg=100_000)
    else:
        options.update(kimg=kimg)
    start = time.time()
    trainer = Trainer(options, quiet=True)
    record = dict(asdict(cell), options=f"{BASE} {RECIPES[cell.recipe]}".strip(), threads=torch.get_num_threads())
    try:
        run_dir = trainer.run()
    except TrainingDiverged as e:  # a result too: recorded and shown, not retried
        return dict(record, kimg=trainer.cur_nimg / 1000, train_minutes=(time.time() - start) / 60, diverged=str(e),
                    curves=curves(trainer.run_dir), run=trainer.run_dir.name, finished=time.strftime("%Y-%m-%d %H:%M"))
    train_seconds = time.time() - start
    quality = quality_with_floor(trainer.G_ema, digits_data(workdir, FULL), trainer.device)
    grid = out / "results" / f"{cell.name}.png"
    grid.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sorted(run_dir.glob("fakes*.png"))[-1], grid)
    return dict(record, kimg=trainer.cur_nimg / 1000, train_minutes=train_seconds / 60,
                measure_minutes=(time.time() - start - train_seconds) / 60, numbers=quality["generated"],
                floor=quality["floor"], num_images=quality["num_images"], curves=curves(run_dir), run=run_dir.name,
                finished=time.strftime("%Y-%m-%d %H:%M"))


def attention_alignment(run_dir: Path, images: int = 512, batch: int = 64, seed: int = 0) -> float:
    """EqGAN-SA's alignment error (the training loss at weight 1) between D's Grad-CAM on G_ema's images and
    the heatmaps G_ema was given, averaged over `images` samples of the run's last checkpoint: lower means
    G and D attend to the same places, which the paper claims the alignment loss brings about."""
    checkpoint = sorted((run_dir / "checkpoints").glob("ckpt-*.safetensors"))[-1]
    G, D = (load_network(checkpoint, key=key) for key in ("G_ema", "D"))
    align, total = AttentionAlignment(D), 0.0
    torch.manual_seed(seed)
    for _ in range(images // batch):
        z = torch.randn(batch, G.z_dim)
        c = torch.nn.functional.one_hot(torch.randint(G.c_dim, [batch]), G.c_dim).float() if G.c_dim else None
        heatmaps = random_heatmaps(batch, G.img_resolution)
        with torch.no_grad():
            img = G(z, c, noise_mode="const", heatmap=heatmaps)
            with align.watch() as features:
                D(img, c)
        total += float(align(img, c, features, heatmaps))
    return total / (images // batch)


# --- the report -------------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _numbers_cells(n: dict) -> str:
    return (f"{_fmt(n['fid'], 2)} | {_fmt(n['kid'], 4)} | {_fmt(n['precision'], 3)} | {_fmt(n['recall'], 3)} | "
            f"{_fmt(n['class_acc'], 3)} | {_fmt(n['class_coverage'], 3)}")


NUMBER_HEADER = "FID | KID | precision | recall | class_acc | coverage"


def _table(cells: list[Cell], results: dict) -> list[str]:
    lines = [f"| cell | recipe | images | seed | kimg | train min | {NUMBER_HEADER} | samples |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for cell in cells:
        r = results.get(cell.name)
        if r is None or "diverged" in r:
            status = "not run yet" if r is None else f"diverged at {r['kimg']:.1f} kimg"
            lines.append(f"| `{cell.name}` | {cell.recipe} | {cell.images} | {cell.seed} | {status} |" + " |" * 8)
            continue
        lines.append(f"| `{cell.name}` | {cell.recipe} | {cell.images} | {cell.seed} | {r['kimg']:.1f} | "
                     f"{r['train_minutes']:.1f} | {_numbers_cells(r['numbers'])} | "
                     f"[grid](results/{cell.name}.png) |")
    return lines


def _fid_summary(cells: list[Cell], results: dict) -> list[str]:
    """FID per recipe and data size: mean over the seeds, with each seed's value, so that a difference can
    be told from seed noise."""
    lines = ["| recipe | " + " | ".join(f"{n} images" for n in LIMITED_SIZES) + " |",
             "|---" * (len(LIMITED_SIZES) + 1) + "|"]
    for recipe in LIMITED_RECIPES:
        row = []
        for n in LIMITED_SIZES:
            fids = [results[c.name]["numbers"]["fid"] for c in cells
                    if c.recipe == recipe and c.images == n and "numbers" in results.get(c.name, {})]
            row.append(f"{np.mean(fids):.2f} ({', '.join(f'{f:.2f}' for f in fids)})" if fids else "-")
        lines.append(f"| {recipe} | " + " | ".join(row) + " |")
    return lines


def plot_ada(results: dict, path: Path) -> bool:
    """p of the ADA cells and r_t of StyleGAN2 beside ADA, over kimg, one colour per data size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results.values() if r["group"] == "limited" and r["recipe"] in ("sg2", "ada")]
    if not shown:
        return False
    fig, (ax_p, ax_rt) = plt.subplots(1, 2, figsize=(10, 3.6))
    colours = dict(zip(LIMITED_SIZES, ("tab:red", "tab:orange", "tab:blue")))
    for r in sorted(shown, key=lambda r: r["name"]):
        c = r["curves"]
        style = dict(color=colours.get(r["images"], "gray"), alpha=1.0 if r["seed"] == 0 else 0.5)
        if r["recipe"] == "ada":
            ax_p.plot(c["kimg"], c["p"], label=f"{r['images']} images, seed {r['seed']}", **style)
        ax_rt.plot(c["kimg"], c["rt"], linestyle="-" if r["recipe"] == "ada" else ":",
                   label=f"{r['recipe']}, {r['images']}, s{r['seed']}", **style)
    ax_p.set(xlabel="kimg", ylabel="p", title="ADA: augmentation probability p")
    ax_rt.axhline(0.6, color="black", linewidth=0.8)
    ax_rt.set(xlabel="kimg", ylabel="r_t = E[sign(D(real))]", title="r_t: ADA (solid), StyleGAN2 (dotted)")
    for ax in (ax_p, ax_rt):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _alignment_lines(cells: list[Cell], results: dict) -> list[str]:
    measured = [(c.name, results[c.name]["alignment"]) for c in cells if "alignment" in results.get(c.name, {})]
    if not measured:
        return []
    return ["EqGAN-SA's alignment error at the end (the alignment loss at weight 1, measured on 512 samples of "
            "G_ema for both cells: mean |Grad-CAM of D - G's heatmaps| over the elements off by more than 0.25; "
            "lower = G and D attend to the same places): "
            + ", ".join(f"`{name}` {value:.3f}" for name, value in measured) + ".", ""]


def write_report(results: dict, out: Path) -> Path:
    cells = all_cells()
    limited = [c for c in cells if c.group == "limited"]
    family = [c for c in cells if c.group == "family"]
    measured = [r for r in results.values() if "floor" in r]
    floor = measured[0]["floor"] if measured else None
    num_images = measured[0]["num_images"] if measured else FULL // 2
    plotted = plot_ada(results, out / "results" / "ada.png")
    lines = [
        "# Results: the methods on the built-in digits",
        "",
        "Written by `python benchmarks/bench_quality.py` from `docs/results.json` (edit neither by hand).",
        "`python benchmarks/bench_quality.py --cell NAME` trains and measures the cell of that name unless the",
        "JSON has it already (delete its entry to redo it); without `--cell`, every cell not measured yet.",
        f"Machine: {platform.machine()}, torch {torch.__version__}, "
        f"{', '.join(sorted({str(r['threads']) for r in results.values()})) or '-'} torch thread(s).",
        "",
        "How each cell is measured: G_ema at the end of training, with `builtin:digits` (a classifier of the",
        "digits shipped with StyleForge: its penultimate features for FID, KID and precision/recall). The full",
        f"set of {FULL} digits is split at random into halves A and B of {num_images} images; G draws {num_images}",
        "images, each asked for the digit of an image of A, and is measured against B. The floor is A measured",
        "against B: what real digits score at these sample sizes. class_acc: the share of images classified as",
        "the digit asked for; coverage: entropy of the predicted digits / log 10.",
        "",
        f"| floor | {NUMBER_HEADER} |",
        "|---|---|---|---|---|---|---|",
        f"| real half A against real half B | {_numbers_cells(floor) if floor else '- | - | - | - | - | -'} |",
        *[f"| copying the {n} training images of the limited-data cells | "
          f"{_numbers_cells(results[copy_name(n)]['numbers'])} |" for n in LIMITED_SIZES if copy_name(n) in results],
        "",
        "Copying: a \"generator\" that draws its own training images (with replacement, of the digit asked for),",
        "measured like the cells: what memorizing a small training set reaches (a little too good, as some",
        "training images are in B too). A cell far above it is limited by its training, not by its data.",
        "",
        f"## Limited data ({LIMITED_KIMG} kimg per cell)",
        "",
        "FID (mean over seeds, then each seed):",
        "",
        *_fid_summary(limited, results),
        "",
        *_table(limited, results),
        "",
        "### ADA's p and r_t over training",
        "",
        "![ADA's p and r_t](results/ada.png)" if plotted else "(no ADA or StyleGAN2 cell measured yet)",
        "",
        f"## The family at equal wall time ({FAMILY_MINUTES} minutes of training each, all {FULL} images)",
        "",
        "Wall time on a shared CPU varies with the load; the kimg column says how far each got.",
        "",
        *_table(family, results),
        "",
        *_alignment_lines(family, results),
        "## Recipes (`styleforge train` options)",
        "",
        f"Every recipe adds its options to `{BASE}`.",
        "",
        "| recipe | options |",
        "|---|---|",
        *[f"| {name} | `{options or '(none)'}` |" for name, options in RECIPES.items()],
    ]
    path = out / "results.md"
    # The reading of the results is written by hand below the marker; rewriting the tables keeps it.
    kept = path.read_text().partition(DISCUSSION_MARKER)[2] if path.exists() else ""
    tmp = path.with_suffix(f".md.{os.getpid()}.tmp")  # replaced at once: a run beside this one may read it
    tmp.write_text("\n".join(lines) + "\n\n" + DISCUSSION_MARKER + (kept or "\n"))
    tmp.replace(path)
    return path


# --- main -------------------------------------------------------------------------------------------
def load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def save_result(path: Path, name: str, record: dict) -> dict:
    """Adds one cell's record to the results file and returns all results. Under a lock, re-reading the file
    first: several runs (e.g. one per CPU core, `--cell '*-s0'` and `--cell '*-s1'`) can share it."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = {**load_results(path), name: record}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(path)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", action="append", help="cell name or pattern (repeatable; default: all)")
    parser.add_argument("--list", action="store_true", help="list the cells and whether they are measured")
    parser.add_argument("--report", action="store_true", help="only rewrite results.md and the plot")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "docs",
                        help="where results.md, results.json and results/*.png go (default: docs/)")
    parser.add_argument("--workdir", type=Path, default=Path("bench-quality"), help="data sets and runs")
    parser.add_argument("--kimg", type=float, default=LIMITED_KIMG, help="kimg of a limited-data cell")
    parser.add_argument("--minutes", type=float, default=FAMILY_MINUTES, help="training minutes of a family cell")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a shared 2-core machine 2 threads ran 1-7x slower)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results_path = args.out / "results.json"
    results = load_results(results_path)
    cells = all_cells()
    if args.cell:
        cells = [c for c in cells if any(fnmatch.fnmatch(c.name, pattern) for pattern in args.cell)]
        if not cells:
            parser.error(f"no cell matches {args.cell}; see --list")
    if args.list:
        for c in cells:
            print(f"{c.name:26s} {'measured' if c.name in results else '-'}")
        return
    if not args.report:
        args.out.mkdir(parents=True, exist_ok=True)
        for n in LIMITED_SIZES:
            if copy_name(n) not in results:
                results = save_result(results_path, copy_name(n), measure_copying(args.workdir, n))
        for cell in cells:
            before = results.get(cell.name)
            if before:
                print(f"{cell.name}: measured, skipped")
            else:
                print(f"{cell.name}: training ({RECIPES[cell.recipe] or 'StyleGAN2'})", flush=True)
                results = save_result(results_path, cell.name, run_cell(cell, args.workdir, args.out, args.kimg,
                                                                        args.minutes))
                r = results[cell.name]
                outcome = (f"diverged: {r['diverged']}" if "diverged" in r else
                           f"FID {r['numbers']['fid']:.2f} (floor {r['floor']['fid']:.2f}), class_acc "
                           f"{_fmt(r['numbers']['class_acc'], 3)}, measured in {r['measure_minutes']:.1f} min")
                print(f"{cell.name}: {r['kimg']:.1f} kimg in {r['train_minutes']:.1f} min, {outcome}", flush=True)
            # Also for cells measured before the alignment was: it comes from the run's last checkpoint.
            r = results[cell.name]
            if "numbers" in r and "alignment" not in r and uses_heatmaps(cell):
                results = save_result(results_path, cell.name,
                                      dict(r, alignment=attention_alignment(args.workdir / "runs" / r["run"])))
            if results[cell.name] is not before:  # save_result re-reads the file: a new record
                write_report(results, args.out)
    print(f"wrote {write_report(results, args.out)}")


if __name__ == "__main__":
    main()
