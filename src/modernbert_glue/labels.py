"""Labels: a file's label value as a class id or a score (parse_label), and a custom task's classes found in its
training file (with_found_labels)."""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import UserError
from .tasks import CUSTOM, Task


def parse_label(value: Any, task: Task, where: str) -> int | float | str:
    """A label id (by name, then by number), a float for regression, or — a custom task whose labels are not
    known yet — the label as text."""
    if task.regression:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None or not math.isfinite(number):
            raise UserError(f"{where}: label {value!r} is not a number (regression)")
        if task.score_range and not task.score_range[0] <= number <= task.score_range[1]:
            low, high = task.score_range
            raise UserError(f"{where}: score {value!r} is outside {task.name}'s scale, {low:g} to {high:g}")
        return number
    given, value = value, _decimal(value)  # "1.0" in a csv cell is the 1.0 a JSON file would hold
    if not task.label_names:
        if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
                isinstance(value, str) and not value.strip()):
            raise UserError(f"{where}: label {given!r} is not a class label")
        if isinstance(value, float) and not value.is_integer():
            raise UserError(f"{where}: label {given!r} is not a class label (for numbers to predict, use "
                            "--regression)")
        return str(int(value)) if isinstance(value, float) else str(value).strip()
    if isinstance(value, str) and value.strip() in task.label_names:
        return task.label_names.index(value.strip())
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        if str(int(value)) in task.label_names:  # a custom task's numeric labels are names ("1", "2", ...)
            return task.label_names.index(str(int(value)))
        value = int(value)  # 1.0 as pandas writes labels: the id 1
    # Labels that are numbers themselves are names only: with names 1 and 2, a 0 is an unknown label, not the id 0.
    # So are a custom task's, found in its training file: an id there would be an index into their sorted order.
    by_id = task.name != CUSTOM and not all(map(is_integer_text, task.label_names))
    label = None
    if by_id and isinstance(value, int) and not isinstance(value, bool):
        label = value
    elif by_id and isinstance(value, str) and is_integer_text(value):
        label = int(value)
    if label not in range(task.num_labels):
        allowed = [*map(str, range(task.num_labels))] * by_id + list(task.label_names)
        raise UserError(f"{where}: label {given!r} is not one of {', '.join(allowed)}")
    return label


def _decimal(value: Any) -> Any:
    """A text cell holding a decimal number ("1.0", "0.5") as that number; any other value as it is."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\.[0-9]*\s*", value):
        return float(value)
    return value


def is_integer_text(text: str) -> bool:
    """'12' or '-3', in ASCII digits (str.isdigit also accepts '²', which int() refuses)."""
    return re.fullmatch(r"-?[0-9]+", text.strip()) is not None


MAX_CLASSES = 1000


def require_two_classes(names, source: str) -> None:
    """One line when a classifier's training labels (`names`, the distinct ones) hold a single class."""
    if len(names) < 2:
        raise UserError(f"{source}: every label is {next(iter(names))!r}; a classifier needs two or more")


def with_found_labels(task: Task, train: dict[str, list], source: str) -> tuple[Task, dict[str, list]]:
    """A custom classification task gets its label names from its training file (numbers in numeric order,
    else sorted text); returns the task and the training columns with label ids."""
    if task.name != CUSTOM or task.regression or task.label_names or "label" not in train:
        return task, train
    found = set(train["label"])
    numeric = all(map(is_integer_text, found))
    names = sorted(found, key=lambda name: (int(name), name)) if numeric else sorted(found)
    same = [(a, b) for a, b in zip(names, names[1:]) if numeric and int(a) == int(b)]
    if same:  # "01" and "1" would be two classes of one number
        raise UserError(f"{source}: labels '{same[0][0]}' and '{same[0][1]}' are the same number; write each class "
                        "one way")
    require_two_classes(names, source)
    if len(names) > MAX_CLASSES:
        raise UserError(f"{source}: {len(names)} different labels; for numbers to predict, use --regression")
    task = task.with_labels(names)
    index = {name: i for i, name in enumerate(names)}
    return task, {**train, "label": [index[label] for label in train["label"]]}
