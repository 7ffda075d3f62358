"""Library noise kept off the user's terminal (the machine's facts: tests/runtime/test_machine.py)."""

from __future__ import annotations

import subprocess
import sys

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
