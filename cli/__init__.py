"""sfttop: a terminal monitor for LLM fine-tuning runs.

``sfttop.core`` is the headless engine (no Textual import); ``sfttop.tui`` renders it.
"""

__version__ = "0.1.0"
