"""nascore._cpu_workarounds: the odd-batch heap corruption of torch 2.13's CPU conv weight gradient.

The probe runs in a subprocess (a heap corruption would kill pytest itself) and must survive with the
work-around. Without it (``guarded=False``) the same probe crashes torch 2.13.0+cpu on the development
machine; that is documented in the module, not asserted here, because it depends on the CPU's ISA.
"""
import subprocess
import sys
import textwrap

import pytest
import torch

from nascore._cpu_workarounds import training_threads

PROBE = textwrap.dedent("""
    import torch
    from nascore._cpu_workarounds import training_threads
    torch.set_num_threads(2)
    conv = torch.nn.Conv2d(4, 8, 1, stride=2, bias=False).to(memory_format=torch.channels_last)
    def steps():
        for batch in (49, 33, 97, 17, 127) * 6:
            x = torch.rand(batch, 4, 32, 32).contiguous(memory_format=torch.channels_last).requires_grad_()
            conv(x).sum().backward()
    if {guarded}:
        with training_threads("cpu"):
            steps()
        assert torch.get_num_threads() == 2
    else:
        steps()
    print("survived")
""")


def _probe(guarded: bool) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE.format(guarded=guarded)], capture_output=True, text=True,
                          timeout=300)


def test_training_threads_avoids_the_crash_and_restores_the_thread_count():
    out = _probe(guarded=True)
    assert out.returncode == 0 and "survived" in out.stdout, out.stderr[-2000:]


def test_one_thread_inside_and_the_old_count_after_even_on_error():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError):
            with training_threads("cpu"):
                assert torch.get_num_threads() == 1
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
        with training_threads("meta"):  # not the CPU: untouched
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
