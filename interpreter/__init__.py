"""The Neural TerpreT language: parse -> check -> unroll -> lower, and execution."""
