"""Training tasks shipped with the project (offline): numwords and shakespeare."""

from __future__ import annotations

from .base import Task
from .numwords import NumWords
from .numwords_hard import NumWordsHard
from .shakespeare import Shakespeare

TASKS: dict[str, type[Task]] = {"numwords": NumWords, "shakespeare": Shakespeare, "numwords-hard": NumWordsHard}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]()


def list_tasks() -> list[str]:
    return list(TASKS)


__all__ = ["TASKS", "Task", "NumWords", "NumWordsHard", "Shakespeare", "get_task", "list_tasks"]
