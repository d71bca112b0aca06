"""BlazingText ``mode=supervised``: fastText's text classifier, trained with PyTorch.

Reading order: ``corpus`` (channels -> encoded lines, spilled), ``encoding`` (tokens -> input
rows, with ``hashindex``), ``batches`` (lines planned into mini-batches once), ``model`` (the
parameters and one SGD step), ``losses`` (the output layer per ``loss``), ``trainer`` (epochs,
validation, early stopping, ``model.bin``), ``checkpoint`` (spot restarts), and for serving
``predictor`` with ``scoring`` (probabilities for every loss a fastText model may use).
"""
