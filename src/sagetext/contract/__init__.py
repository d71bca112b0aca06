"""The SageMaker container contract: the only code that knows /opt/ml and its files."""
