"""The README's Python examples run and print what they say (doctest)."""

import doctest
import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_examples():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for i, text in enumerate(blocks):
        test = parser.get_doctest(text, {}, f"README block {i}", str(README), 0)
        assert test.examples, f"README block {i} has no >>> example"
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} README example(s) failed"


def test_package_docstring_example_and_lazy_top_level_names():
    import subprocess
    import sys

    import ddlsim
    from ddlsim import api

    assert doctest.testmod(ddlsim).failed == 0
    assert ddlsim.Job is api.Job and ddlsim.predict is api.predict
    assert "predict" in dir(ddlsim)
    code = ("import sys; from ddlsim import kernels; import ddlsim.kernels.ops; "
            "print(sorted(m for m in ('pandas', 'simpy', 'click') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
