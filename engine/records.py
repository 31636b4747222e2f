"""Validated job-file values as plain records: what a run reads.

Job files are checked by pydantic models (`engine/spec.py` and each kind's spec
module); right after validation every model becomes a `Record`
(`engine.specvalidate.to_record`) with the same attribute names and values — nested
models as records; Url, Path, enums, tuples, lists and dicts as they are; passwords as
`engine.urls.Secret`. A run therefore has one type whether its file was just validated
or came from the cache (pickled records), and a cached run imports no pydantic (about
60 ms of CPU on every start). Behaviour that kinds need at run time lives in plain
functions beside the kinds, not on the models."""

from __future__ import annotations

from typing import Any


class Record:
    """Read-only attributes named like the fields of the model it came from."""

    __slots__ = ("_model", "__dict__")

    def __init__(self, model: str, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "_model", model)
        self.__dict__.update(fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{model_of(self)} is read-only (it holds a validated job file)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and self._model == other._model and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((self._model, *vars(self).items()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{self._model.rpartition('.')[2]}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return Record, (self._model, vars(self))


def model_of(record: Record) -> str:
    """`module.Class` of the model a record was validated by (a function, so no field
    name is ever shadowed)."""
    return record._model
