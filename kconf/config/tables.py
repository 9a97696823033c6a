"""The table sources of ``data``: columns of a CSV or Parquet file.

    data:
      source:
        csv:
          path: data/customers.csv
          x: [age, income, "visits_*", city, plan]   # names, 0-based indexes or globs
          y: churned
          categorical: {city: one_hot, plan: ids}    # or a list: one-hot each
          fill: {income: median, age: mean}          # or one method for every feature
          unknown: warn                              # a category train never saw: warn, oov, error

A categorical column's vocabulary is fitted on the training split (Keras's ``StringLookup``:
most frequent first, ties by the value, descending; index 0 is the out-of-vocabulary id), and
so are the fills; both are saved with the run's preprocessing (``preprocess.json``).
"""

from typing import Annotated, Any, Mapping, Sequence, Union

from pydantic import Field, PlainValidator, WithJsonSchema, model_validator

from kconf.args.fields import (
    Bool,
    Name,
    NonNegativeInt,
    Number,
    Str,
    choice,
    config_error,
)
from kconf.args.unions import by_kind
from kconf.config.data import Path
from kconf.config.images import StreamArgs
from kconf.text import show

#: How a categorical column becomes numbers: ``one_hot`` rows (the out-of-vocabulary value
#: first, as Keras's ``StringLookup(output_mode="one_hot")``), or one integer id per value.
ENCODINGS: tuple[str, ...] = ("one_hot", "ids")
#: How a missing value of a numeric feature is filled: the training split's ``mean`` or
#: ``median`` of the column, or ``fill_value`` (``constant``).
FILLS: tuple[str, ...] = ("mean", "median", "constant")
#: What a categorical value that the training split never had becomes: the out-of-vocabulary
#: id with a warning (``warn``), the same silently (``oov``), or an error (``error``).
UNKNOWN: tuple[str, ...] = ("warn", "oov", "error")


def _check_column(value: Any) -> str | int:
    """A table column: a name from the header (or a glob of names), or a 0-based index."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise config_error("column", "expected a column name or a 0-based column index, "
                                     f"got {show(value)}")
    if isinstance(value, int) and value < 0:
        raise config_error("column", f"a column index counts from 0, got {value}")
    if isinstance(value, str) and not value:
        raise config_error("column", "a column name must not be empty")
    return value


#: A column: its name in the header (a string, possibly a glob such as ``score_*``) or its
#: 0-based index (an integer).
Column = Annotated[Union[str, int], PlainValidator(_check_column), WithJsonSchema({"anyOf": [
    {"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0}]})]
_ColumnList = Annotated[list[Column], Field(min_length=1)]
_ArrayColumns = by_kind(scalar=Column, list=_ColumnList,
                        expected="a column or a list of columns")
Encoding = choice("categorical encoding", ENCODINGS)
Fill = choice("fill", FILLS)


def _columns(noun: str) -> Any:
    """One array's columns (one, or a list), or a mapping input/output name -> columns."""
    return by_kind(scalar=Column, list=_ColumnList,
                   mapping=Annotated[dict[Name, _ArrayColumns], Field(min_length=1)],
                   expected=f"a column, a list of columns or a mapping {noun} -> columns")


def _column_paths(prefix: tuple, columns: Any) -> list[tuple[tuple, str | int]]:
    if isinstance(columns, list):
        return [((*prefix, i), c) for i, c in enumerate(columns)]
    return [(prefix, columns)]


class TableArgs(StreamArgs):
    """What every table source shares: the file, the feature and target columns, and how
    categorical and missing values become numbers."""

    path: Path
    x: _columns("input") | None = Field(
        None, description="feature columns (names, globs such as score_*, or 0-based "
                          "indexes); default: every column not in y")
    y: _columns("output") = Field(description="target column(s)")
    sample_weight: Column | None = Field(
        None, description="a column of per-sample weights (Keras's sample_weight); it is "
                          "then no feature")
    categorical: by_kind(list=_ColumnList,
                         mapping=Annotated[dict[Str, Encoding], Field(min_length=1)],
                         expected="a list of columns (one-hot each) or a mapping column -> "
                                  "one_hot or ids") | None = Field(
        None, description="columns of category values (text): a list (one-hot), or column "
                          "-> one_hot | ids; the vocabulary comes from the training split")
    fill: by_kind(scalar=Fill, mapping=Annotated[dict[Str, Fill], Field(min_length=1)],
                  expected="mean, median or constant, or a mapping column -> method") | None = (
        Field(None, description="how missing feature values are filled: mean, median (of the "
                                "training split) or constant (fill_value); one for every "
                                "feature or column -> method; without it a missing value is "
                                "an error"))
    fill_value: Number = Field(0.0, description="the value fill: constant puts in")
    unknown: choice("unknown-category policy", UNKNOWN) = Field(
        "warn", description="a categorical value the training split never had: the "
                            "out-of-vocabulary id with a warning (warn), silently (oov), or "
                            "an error (error)")

    def column_paths(self, key: str) -> list[tuple[tuple, str | int]]:
        """Every column ``x``, ``y`` or ``categorical`` names, with its path below the key.

        Args:
            key: ``"x"``, ``"y"`` or ``"categorical"``.

        Returns:
            ``(path below key, column)`` pairs: ``()`` for a single column, ``(i,)`` in a
            list, ``(name,)`` or ``(name, i)`` in a mapping of x or y; a ``categorical``
            mapping's keys are its columns.
        """
        value = getattr(self, key)
        if value is None:
            return []
        if key == "categorical" and isinstance(value, dict):
            return [((k,), k) for k in value]
        if not isinstance(value, dict):
            return _column_paths((), value)
        return [item for name, cols in value.items() for item in _column_paths((name,), cols)]

    def encodings(self) -> list[tuple[tuple, str | int, str]]:
        """``(path below categorical, column, encoding)`` of each categorical entry."""
        value = self.categorical
        if value is None:
            return []
        if isinstance(value, dict):
            return [((k,), k, enc) for k, enc in value.items()]
        return [((i,), c, "one_hot") for i, c in enumerate(value)]

    def fills(self) -> list[tuple[tuple, str | None, str]]:
        """``(path below fill, column or None for all, method)`` of each fill entry."""
        if self.fill is None:
            return []
        if isinstance(self.fill, dict):
            return [((k,), k, m) for k, m in self.fill.items()]
        return [((), None, self.fill)]

    def x_for(self, inputs: Sequence[str] | None) -> list[list[tuple[tuple, str | int]] | None]:
        """The columns of each model input, in order, with their config paths below ``x``.

        Args:
            inputs: ``RunConfig.input_names()`` (None for a sequential model).

        Returns:
            One list of ``(path below x, column)`` per input; ``[None]`` when ``x`` is not
            given (every column not in ``y``).
        """
        return self._for("x", inputs, None)

    def y_for(self, outputs: Sequence[str] | None,
              aliases: Mapping[str, str] | None = None) -> list[list[tuple[tuple, str | int]]]:
        """The columns of each model output, in order, with their config paths below ``y``.

        Args:
            outputs: ``RunConfig.output_names()`` (None for a sequential model).
            aliases: ``RunConfig.output_aliases()``.

        Returns:
            One list of ``(path below y, column)`` per output.
        """
        return self._for("y", outputs, aliases)

    def _for(self, key: str, names, aliases) -> list:
        value = getattr(self, key)
        if value is None:
            return [None]
        if not isinstance(value, dict):
            return [_column_paths((), value)]
        if names is None:
            return [_column_paths((k,), cols) for k, cols in value.items()]
        aliases = aliases or {}
        keyed = {(k if k in names else aliases.get(k, k)): k for k in value}
        missing = [n for n in names if n not in keyed]
        if missing:
            raise ValueError(f"nothing given for {', '.join(missing)}")
        return [_column_paths((keyed[n],), value[keyed[n]]) for n in names]


class CsvArgs(TableArgs):
    """Columns of a CSV file (read with the standard ``csv`` module).

    ``x`` and ``y`` name columns: one column (an array of shape ``(N, 1)``), a list of them
    (``(N, k)``), or a mapping input/output name -> columns. Columns are named by the header
    (``header: true``, the default; globs such as ``score_*`` match several, in file order) or
    by 0-based index. Without ``x``, every column that is not in ``y`` is a feature. Target
    columns whose values are all integers are labels. ``categorical`` columns hold text
    (a one-hot block or an id each); ``fill`` fills missing values (an empty cell, ``NA``,
    ``N/A``, ``NaN``, ``null``, ``None``).
    """

    header: Bool = Field(True, description="the first row (after skip_rows) names the "
                                           "columns; false: columns by 0-based index")
    delimiter: Annotated[Str, Field(min_length=1, max_length=1)] = Field(
        ",", description="one character between values")
    skip_rows: NonNegativeInt = Field(0, description="lines skipped at the top of the file, "
                                                     "before the header")

    @model_validator(mode="after")
    def _names_need_a_header(self):
        if self.header:
            return self
        for key in ("x", "y", "categorical"):
            for at, column in self.column_paths(key):
                if isinstance(column, str):
                    dotted = ".".join(str(p) for p in (key, *at))
                    raise config_error("column", f"{show(column)} names a column, but the file "
                                                 "has no header (header: false): give its "
                                                 "0-based index", at=dotted)
        return self


class ParquetArgs(TableArgs):
    """Columns of a Parquet file (read with pyarrow: the ``parquet`` extra).

    As ``csv``: ``x`` and ``y`` name columns (or globs of names, or 0-based indexes in the
    file's schema), ``categorical`` string columns become one-hot blocks or ids, ``fill``
    fills null (and NaN) values.
    """
