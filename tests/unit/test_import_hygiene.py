import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["sandbox.libvirt.backend", "sandbox.factory", "images.build", "harness.cli"])
def test_headless_modules_do_not_import_textual(module):
    code = f"import sys, {module}; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
