"""Cells for the CSV and XLSX downloads people open in a spreadsheet: a value that starts like a
formula is prefixed with a quote, so opening the file never runs what a user typed."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
