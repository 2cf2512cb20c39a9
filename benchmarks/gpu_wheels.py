"""Checks, before a device call, that the wheels in .gpu/whl import on the lent GPU's image: every requirement of
every carried wheel is met by another carried wheel or by the image's own package at its known version.

    .venv/bin/python benchmarks/gpu_wheels.py .gpu/whl      (gpu_protocol_prepare.sh runs it last)

Exit 0 when all is met, 1 with one line per unmet requirement, 2 when the folder holds no wheels.
Why it exists: the wheels go into `--target /tmp/site` with `--no-deps`, so a missing or too old dependency
only shows on the device, as an ImportError that costs a machine start. Two such were found by reading metadata:
transformers 5.25 requires huggingface-hub >= 2.4 (the image has 1.33), and typer 0.29 imports pydantic (the
image has none).

IMAGE is the image's package list as the device library documents it (/work/.library/device/KINDS.md, read
2026-12-05; versions where a session's `pip list` there gave them, None where only the name is known: any
version is then assumed to do). Requirements are evaluated for the image: CPython 3.12 on x86_64 Linux.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

IMAGE_VERSIONS = {
    "accelerate": "1.15.0", "huggingface-hub": "1.33.0", "numpy": "2.5.2", "onnx": "1.23.1",
    "onnxruntime": "1.30.0", "safetensors": "0.8.0", "sentence-transformers": "6.0.1", "tokenizers": "0.23.2",
    "torch": "2.11.0", "transformers": "5.17.0", "triton": "3.6.0",
}
IMAGE_NAMES = """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas
nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand
nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink
nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum
opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker
prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks
pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn
scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl
zipp""".split()
IMAGE = {**dict.fromkeys(map(canonicalize_name, IMAGE_NAMES)),
         **{canonicalize_name(k): v for k, v in IMAGE_VERSIONS.items()}}
ENVIRONMENT = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
               "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
               "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def metadata(wheel: Path):
    """The wheel's METADATA (name, version, Requires-Dist)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise ValueError(f"{wheel}: no .dist-info/METADATA inside")
        return Parser().parsestr(archive.read(name).decode("utf-8"))


def unmet(wheel_dir: Path, image: dict[str, str | None] = IMAGE) -> list[str]:
    """One line per requirement of a carried wheel that neither the carried wheels nor the image meet."""
    wheels = sorted(wheel_dir.glob("*.whl"))
    carried = {}
    for wheel in wheels:
        meta = metadata(wheel)
        carried[canonicalize_name(meta["Name"])] = (meta["Version"], meta.get_all("Requires-Dist") or [], wheel)
    problems = []
    for name, (_, requires, wheel) in sorted(carried.items()):
        for line in requires:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(ENVIRONMENT):
                continue  # another platform, Python or an extra
            dep = canonicalize_name(req.name)
            if dep in carried:
                have, where = carried[dep][0], "carried"
            elif dep in image:
                have, where = image[dep], "on the image"
            else:
                problems.append(f"{wheel.name}: requires {req}, which is neither carried nor on the image")
                continue
            if have is not None and not req.specifier.contains(Version(have), prereleases=True):
                problems.append(f"{wheel.name}: requires {req}, but {dep} {have} is {where}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel_dir", type=Path)
    args = parser.parse_args()
    if not any(args.wheel_dir.glob("*.whl")):
        print(f"no wheels in {args.wheel_dir}", file=sys.stderr)
        sys.exit(2)
    problems = unmet(args.wheel_dir)
    for line in problems:
        print(line)
    if problems:
        sys.exit(1)
    print(f"{len(list(args.wheel_dir.glob('*.whl')))} wheels: every requirement is carried or on the GPU image")


if __name__ == "__main__":
    main()
