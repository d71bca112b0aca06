"""The SageMaker container contract: the only code that knows /opt/ml and its files.

We read the contract ourselves rather than through ``sagemaker_training.environment``: that
module creates directories and writes ``os.environ`` when imported or constructed, asks boto3
for a region and shells out to ``nvidia-smi``, and types hyperparameters by trying
``json.loads`` on each. Here every file is read on demand from plain paths (``paths``),
hyperparameters are typed by the algorithm's spec in ``configs/`` (``hyperparameters``), the
environment's settings are read once (``settings``), and tests build the same objects from
dicts. From ``sagemaker-training`` we use the generated
``record_pb2`` message (``sagetext.data.recordio``) and, in tests, its RecordIO writers.
"""
