"""sagetext: open, fast, drop-in replacements for SageMaker BlazingText, Seq2Seq and NTM."""

__version__ = "0.1.0"
