import pytest
import torch

from styleforge.errors import UserError
from styleforge.networks.persistence import persistent
from styleforge.registry import GENERATORS
from styleforge.training import checkpoint as ckpt_io


@GENERATORS.register("_test_ckpt_net")
@persistent("_test_ckpt_net")
class Net(torch.nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.fc = torch.nn.Linear(width, width)
        self.register_buffer("count", torch.zeros([], dtype=torch.int64))


def trained_state():
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.0, 0.99))
    for _ in range(3):
        opt.zero_grad()
        net.fc(torch.randn(2, 4)).square().sum().backward()
        opt.step()
    return net, opt


def save(path, net, opt, progress=None):
    ckpt_io.save_checkpoint(path, {"G": net}, {"opt_G": opt}, {"loss.pl_mean": torch.tensor(1.5)},
                            progress or {"cur_nimg": 64}, {"cfg": "cpu"})


def test_round_trip_restores_weights_optimizer_rng_and_progress(tmp_path):
    net, opt = trained_state()
    path = tmp_path / "ckpt-00000000.safetensors"
    torch.manual_seed(123)
    save(path, net, opt)
    expected_next = torch.rand(3)
    ckpt = ckpt_io.load_checkpoint(path)
    net2 = Net()
    net2.load_state_dict(ckpt.networks["G"])
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.5)
    opt2.load_state_dict(ckpt.optimizers["opt_G"])
    assert opt2.param_groups[0]["lr"] == 0.01 and tuple(opt2.param_groups[0]["betas"]) == (0.0, 0.99)
    for p1, p2 in zip(opt.state.values(), opt2.state.values()):
        for k in p1:
            assert torch.equal(torch.as_tensor(p1[k]), torch.as_tensor(p2[k]))
    # The same update from both optimizers gives the same weights.
    for o, n in ((opt, net), (opt2, net2)):
        o.zero_grad()
        n.fc(torch.ones(1, 4)).sum().backward()
        o.step()
    assert torch.equal(net.fc.weight, net2.fc.weight)
    ckpt_io.restore_rng(ckpt.rng)
    assert torch.equal(torch.rand(3), expected_next)
    assert ckpt.progress == {"cur_nimg": 64} and ckpt.config == {"cfg": "cpu"}
    assert ckpt.extra["loss.pl_mean"].item() == 1.5


def test_truncated_and_corrupted_files_are_refused(tmp_path):
    net, opt = trained_state()
    path = tmp_path / "ckpt-00000001.safetensors"
    save(path, net, opt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or corrupted"):
        ckpt_io.load_checkpoint(path)
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF  # a bit flip inside the tensor data keeps the header valid
    path.write_bytes(bytes(flipped))
    with pytest.raises(UserError, match="checksum mismatch"):
        ckpt_io.load_checkpoint(path)


def test_latest_good_falls_back_past_a_damaged_checkpoint(tmp_path):
    net, opt = trained_state()
    folder = tmp_path / ckpt_io.CHECKPOINT_DIR
    folder.mkdir()
    save(folder / "ckpt-00000001.safetensors", net, opt, {"cur_nimg": 1000})
    save(folder / "ckpt-00000002.safetensors", net, opt, {"cur_nimg": 2000})
    (folder / "ckpt-00000002.safetensors").write_bytes(b"garbage")
    messages = []
    ckpt = ckpt_io.load_latest_good(tmp_path, log=messages.append)
    assert ckpt.progress["cur_nimg"] == 1000
    assert "ckpt-00000002" in messages[0]


def test_non_finite_weights_are_never_saved(tmp_path):
    net, opt = trained_state()
    with torch.no_grad():
        net.fc.weight[0, 0] = float("nan")
    path = tmp_path / "ckpt-00000003.safetensors"
    with pytest.raises(FloatingPointError, match="fc.weight"):
        save(path, net, opt)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_prune_keeps_last_k_and_the_best(tmp_path):
    net, opt = trained_state()
    folder = tmp_path / ckpt_io.CHECKPOINT_DIR
    folder.mkdir()
    paths = [folder / f"ckpt-{i:08d}.safetensors" for i in range(5)]
    for p in paths:
        save(p, net, opt)
    assert ckpt_io.record_best(tmp_path, paths[1], "fid", 10.0, lower_is_better=True)
    assert not ckpt_io.record_best(tmp_path, paths[2], "fid", 12.0, lower_is_better=True)
    ckpt_io.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in ckpt_io.list_checkpoints(tmp_path)] == [paths[i].name for i in (1, 3, 4)]


def test_network_file_is_not_a_checkpoint(tmp_path):
    from styleforge.networks.persistence import save_network

    save_network(Net(), tmp_path / "net.safetensors")
    with pytest.raises(UserError, match="not a training checkpoint"):
        ckpt_io.load_checkpoint(tmp_path / "net.safetensors")
