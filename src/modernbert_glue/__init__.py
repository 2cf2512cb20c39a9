"""modernbert-glue: fine-tune, evaluate, compare and serve text encoders on the GLUE tasks and your own data.

The Python API (api.py) is importable from here: `import modernbert_glue as mg; mg.train(...)`. Its functions
load on first use, so that importing the package (and `modernbert-glue --version`) stays free of torch.
"""

from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:  # what type checkers and editors read (with py.typed): the lazy names below, with signatures
    from .api import (baseline, benchmark, compare, evaluate, export_onnx, glue_submission, list_presets,
                      load_model, predict, resume, show_preset, sweep, train)

__version__ = "0.1.0"
__all__ = ["UserError", "baseline", "benchmark", "compare", "evaluate", "export_onnx", "glue_submission",
           "list_presets", "load_model", "predict", "resume", "show_preset", "sweep", "train"]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'modernbert_glue' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
