import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded_single_thread():
    # Tiny tensors gain nothing from threads, and on small VMs OpenMP hand-offs made gradchecks 25x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """digits(resolution, images=64, labels=True) -> path of a built-in digits ZIP, built once per session."""
    pytest.importorskip("sklearn")
    from styleforge.data.build import build_dataset

    built = {}

    def make(resolution: int = 16, images: int = 64) -> str:
        if (resolution, images) not in built:
            path = tmp_path_factory.mktemp("digits") / f"digits{resolution}-{images}.zip"
            build_dataset("builtin:digits", path, resolution=resolution, max_images=images)
            built[resolution, images] = str(path)
        return built[resolution, images]

    return make


@pytest.fixture
def tiny_options(tmp_path):
    """Training options of a tiny, fast run (16 px digits, a few kimg at most); add `data`. One fixed thread:
    the thread count the trainer adapts to the machine's load changes the last bits of the results."""
    return dict(cfg="cpu", cbase=128, cmax=16, z_dim=8, w_dim=8, map_layers=1, batch=4, mbstd_group=4, workers=0,
                threads=1, tick_kimg=0.004, snap=100, keep=2, r1_interval=2, pl_interval=2, grid_seeds=4, glr=0.002,
                outdir=str(tmp_path / "runs"))


@pytest.fixture
def train_recorded():
    """train_recorded(options, **trainer_kwargs) -> (trainer, run_dir, {step: that step's losses})."""
    from styleforge.training.loop import Trainer

    def run(options, **kwargs):
        record = {}
        trainer = Trainer(options, step_callback=lambda step, losses: record.__setitem__(step, losses),
                          **{"quiet": True, **kwargs})
        return trainer, trainer.run(), record

    return run
