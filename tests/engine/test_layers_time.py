"""aiinfer layers --time: every step of the plan with its mean time and share
of the run (what the issue's profile asks for: which layers oneDNN handles
worst), and a total line. Checks the format and that the shares add up; no
timing bound (the machine is shared)."""
import os
import re

from test_aiinfer import DIGITS, MNV2, MODELS, aiinfer

LINE = re.compile(r"^(.*)  ([0-9.]+) us  ([0-9.]+)%$")


def timed(*args):
    r = aiinfer("layers", *args, "--time")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    total = re.fullmatch(r"total ([0-9.]+) ms per run, mean of 50 runs", lines[-1])
    assert total, r.stdout
    steps = [LINE.match(line) for line in lines[:-1]]
    assert all(steps), r.stdout
    us = sum(float(m.group(2)) for m in steps)
    share = sum(float(m.group(3)) for m in steps)
    assert abs(share - 100) < 1.0, share  # rounding of each share to 0.1 %
    assert abs(us / 1000 - float(total.group(1))) <= 0.01 * float(total.group(1)) + 0.002
    return [m.group(1) for m in steps]


def test_layers_time_lists_every_step_with_its_share():
    plain = aiinfer("layers", MNV2).stdout.splitlines()
    steps = timed(MNV2)
    assert steps == plain  # the same steps, in order, each with a time
    fused = sum("fused inverted residual block" in s for s in steps)  # engine/irb.c
    assert sum("Conv: onednn" in s for s in steps) + fused == 52


def test_layers_time_with_int8_times_the_quantizing_steps():
    steps = timed(MNV2, "--int8", os.path.join(MODELS, "mobilenetv2-160-input.npy"))
    assert sum(": quantize " in s for s in steps) == 35


def test_layers_time_on_a_split_batch_profiles_one_thread():
    steps = timed(DIGITS, "--threads", 2, "--batch", 4)
    assert any("Conv: onednn" in s for s in steps)
