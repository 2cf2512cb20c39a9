"""benchmarks/gpu_wheels.py: the carried wheels' requirements against each other and the GPU image's packages,
on wheels built here (a METADATA file is all it reads)."""

import subprocess
import sys
import zipfile

from ..conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_wheels.py"


def _wheel(folder, name, version, *requires):
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             *(f"Requires-Dist: {r}" for r in requires)]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", "\n".join(lines) + "\n")


def _check(folder):
    proc = subprocess.run([sys.executable, str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def test_requirements_met_by_carried_wheels_or_the_image_pass(tmp_path):
    _wheel(tmp_path, "typer", "0.29.2", "pydantic>=2.5.3", "rich>=13.8.0", "click",  # click: image, any version
           "colorama; platform_system == 'Windows'", "email-validator>=2; extra == 'email'")
    _wheel(tmp_path, "pydantic", "2.14.4", "typing-extensions>=4.16.0")
    _wheel(tmp_path, "rich", "15.0.0")
    _wheel(tmp_path, "typing-extensions", "4.16.0")
    _wheel(tmp_path, "transformers", "5.24.0", "huggingface-hub<3.0,>=1.31.0", "tokenizers<0.24.0,>=0.23.1",
           'tomli>=1.1.0; python_version < "3.11"')
    code, out, _ = _check(tmp_path)
    assert code == 0 and out == ["5 wheels: every requirement is carried or on the GPU image"]


def test_each_unmet_requirement_is_one_line(tmp_path):
    """What the carried set of 2026-12-04 would have hit on the device: transformers 5.25 needs a newer
    huggingface-hub than the image's, and typer imports pydantic, which the image lacks."""
    _wheel(tmp_path, "transformers", "5.25.0", "huggingface-hub<3.0,>=2.4.0", "tokenizers<0.24.0,>=0.23.1")
    _wheel(tmp_path, "typer", "0.29.2", "pydantic>=2.5.3", "rich>=16")
    _wheel(tmp_path, "rich", "15.0.0")
    code, out, _ = _check(tmp_path)
    assert code == 1
    assert out == [
        "transformers-5.25.0-py3-none-any.whl: requires huggingface-hub<3.0,>=2.4.0, but huggingface-hub 1.33.0 "
        "is on the image",
        "typer-0.29.2-py3-none-any.whl: requires pydantic>=2.5.3, which is neither carried nor on the image",
        "typer-0.29.2-py3-none-any.whl: requires rich>=16, but rich 15.0.0 is carried",
    ]


def test_an_empty_folder_is_refused(tmp_path):
    code, out, err = _check(tmp_path)
    assert code == 2 and out == [] and err.strip() == f"no wheels in {tmp_path}"
