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
