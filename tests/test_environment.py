"""Packaging: pyproject.toml and environment.yml name the same dependencies; torch is pinned."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    py = set(project["dependencies"]) | {d for ds in project["optional-dependencies"].values() for d in ds}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pip = {d for d in pip if not d.startswith("-e")}
    assert {_normalise(d) for d in py} == {_normalise(d) for d in conda_pip}


def test_torch_pinned_in_constraints_and_dependencies():
    constraints = (ROOT / "constraints.txt").read_text()
    assert "torch==2.13.0" in constraints and "torchvision==0.28.0" in constraints
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]


def test_torchvision_imports_through_compat_layer():
    """Plain ``import torchvision`` may fail on CPU torch; the compat import must always work,
    and must patch only when the plain import fails."""
    plain = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True, text=True)
    code = ("from nascore._torchvision_compat import import_torchvision; import nascore._torchvision_compat as c;"
            "tv = import_torchvision(); m = tv.models.resnet18(num_classes=10).eval();"
            "import torch; assert m(torch.rand(1,3,32,32)).shape == (1, 10);"
            "from torchvision import transforms, datasets; print(c.patched)")
    fixed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert fixed.returncode == 0, fixed.stderr
    if plain.returncode == 0:
        assert fixed.stdout.strip() == "False"
    else:
        assert "torchvision::nms" in plain.stderr
        assert fixed.stdout.strip() == "True"


def test_compat_reraises_unrelated_import_errors(monkeypatch):
    import builtins

    from nascore import _torchvision_compat as compat

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "torchvision":
            raise RuntimeError("something else entirely")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    saved = {k: v for k, v in sys.modules.items() if k.startswith("torchvision")}
    for k in saved:
        monkeypatch.delitem(sys.modules, k)
    try:
        compat.import_torchvision()
    except RuntimeError as err:
        assert "something else" in str(err)
    else:
        raise AssertionError("an unrelated RuntimeError was swallowed")
