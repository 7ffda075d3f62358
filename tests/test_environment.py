"""Facts about this machine (the CPUs this process may use, how many are idle), and library noise kept
off the user's terminal."""

from __future__ import annotations

import subprocess
import sys

from edgekit.environment import idle_cpus, idle_threads, usable_cpus


def test_idle_cpus_are_some_of_the_usable_ones():
    assert 1 <= idle_cpus(0.05) <= usable_cpus()


def test_parity_threads_are_the_idle_cpus_or_the_libraries_default():
    threads = idle_threads()
    assert threads is None or 1 <= threads < usable_cpus()


def test_a_library_s_basic_config_on_import_prints_nothing():
    """ONNX Runtime's MatMulNBits quantizer calls logging.basicConfig(level=INFO) when imported: after
    quiet_libraries it must not turn a quantized export's stderr into INFO lines."""
    code = (
        "import logging\n"
        "from edgekit.environment import quiet_libraries\n"
        "quiet_libraries()\n"
        "import onnxruntime.quantization.matmul_nbits_quantizer\n"
        "logging.info('Quantization parameters for tensor not specified')\n"
        "logging.warning('Please consider to run pre-processing before quantization')\n"
        "logging.error('a real error')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "Quantization" in line or "pre-processing" in line] == []
    assert "a real error" in proc.stderr
