"""The demo report puts the trained generator's FID, class_acc and coverage beside the floor."""

import re

import pytest

from styleforge.tools.demo import run_demo

pytest.importorskip("sklearn")


def test_demo_report_shows_quality_beside_the_floor(tmp_path):
    tiny = dict(cbase=256, cmax=16, z_dim=16, w_dim=16, batch=8, mbstd_group=4, workers=0, tick_kimg=0.016,
                snap=1, grid_seeds=4, kimg=0.032)
    report = run_demo(tmp_path, minutes=1, resolution=16, extra_options=tiny, quiet=True).read_text()
    rows = {}
    for line in report.splitlines():
        match = re.match(r"\| (G_ema|floor): .* \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", line)
        if match:
            rows[match[1]] = [float(v) for v in match.groups()[1:]]
    fid, acc, coverage = rows["floor"]
    assert fid < 1 and acc > 0.95 and coverage > 0.95  # real digits: the detector knows them
    assert rows["G_ema"][0] > 10 * fid  # four steps of training are far from real digits
    assert "898 samples" in report and "(898 images each)" in report
