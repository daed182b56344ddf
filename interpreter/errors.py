"""User-facing errors. One shape for all of them: the rule, the value found, a fix.

Internal invariants are ``assert``s; everything a user can cause by what they
write or pass in raises :class:`NtptError` (or :class:`SourceError` when it can
point at a line of their model).
"""

from __future__ import annotations

from typing import Optional

from .ir import Span

QUOTE_WIDTH = 160  # characters of a source line quoted in an error


class NtptError(Exception):
    """Root of every error ntpt-dist raises for bad user input."""


class SourceError(NtptError):
    """A problem in model source, reported as ``file:line:col`` with a caret.

    Args:
        message: the rule broken and the value found, e.g.
            ``"index 5 is out of range for 'tape' (size 5); indices run 0..4"``.
        span: where in the source the problem is.
        source: the whole source text, to quote the offending line.
        fix: an optional hint, printed on its own line.
    """

    def __init__(self, message: str, span: Span, source: str = "", fix: Optional[str] = None):
        self.message = message
        self.span = span
        self.source = source
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.span}: error: {self.message}"
        lines = self.source.splitlines()
        if 1 <= self.span.line <= len(lines):
            line, col = lines[self.span.line - 1], self.span.col
            width = 1
            if self.span.end_line == self.span.line and self.span.end_col > self.span.col:
                width = self.span.end_col - self.span.col
            if len(line) > QUOTE_WIDTH:  # quote a window around the column, never a whole huge line
                start = max(0, col - QUOTE_WIDTH // 4)
                shown = line[start:start + QUOTE_WIDTH]
                prefix = "..." if start else ""
                line = prefix + shown + ("..." if start + QUOTE_WIDTH < len(line) else "")
                col = col - start + len(prefix)
                width = max(1, min(width, len(prefix) + len(shown) - col))
            text += f"\n    {line}\n    {' ' * col}{'^' * width}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class DataError(NtptError):
    """Data that does not fit the model (missing input, value out of range, shape)."""
