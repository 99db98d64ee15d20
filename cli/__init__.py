"""sfttop: a terminal monitor for LLM fine-tuning runs.

``sfttop.core`` is the headless engine (no Textual import); ``sfttop.tui`` renders it.
"""

# The one place the version is written: pyproject.toml reads it from here, reports print it.
__version__ = "0.1.0"
