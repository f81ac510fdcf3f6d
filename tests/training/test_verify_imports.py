"""``o2v verify`` against an account must not load the local stand-ins for AWS.

The import contracts check the static graph; this checks what Python actually loads, since a
package ``__init__`` that imports eagerly (``training.demo``'s did) pulls modules in at runtime.
"""

from __future__ import annotations

import subprocess
import sys


def test_the_account_path_of_o2v_verify_loads_no_local_aws_module() -> None:
    code = ("import sys, training.commands.verify, training.verify.runner, training.demo.recipe, "
            "training.demo.data; print(sorted(m for m in sys.modules if m.split('.')[0] == 'local_aws'))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_demo_package_still_exports_its_names_on_first_use() -> None:
    import training.demo as demo

    assert callable(demo.run_demo) and "standard" in demo.SIZES
    assert sorted(demo.__all__) == sorted(demo._EXPORTS)  # the names mypy sees are the names it loads
