"""What a user installs: one top-level package, emotf, with tuning inside it and no experiment bookkeeping."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_installs_emotf_alone_and_emotf_tuning_imports_from_it(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("emotf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"emotf"}  # no top-level tuning or experiments
    assert "emotf/tuning/hypermodels.py" in names and not any("results" in n for n in names)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    # From outside the repository, with the wheel's copy first on the path (the venv has the dependencies).
    code = "import emotf, emotf.tuning, emotf.tuning.search; print(emotf.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}).stdout
    assert out.strip().startswith(str(tmp_path / "site"))


def test_nothing_in_emotf_imports_a_top_level_tuning_or_experiments_package():
    pattern = re.compile(r"^\s*(from|import) (tuning|experiments)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "emotf").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
    assert not (ROOT / "tuning" / "__init__.py").exists() and not (ROOT / "emotf" / "results.py").exists()
