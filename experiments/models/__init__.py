"""NTPT model sources of the paper's tasks (read as text, never imported as Python)."""
